//! vAPI data values as JSON-RPC carries them: the `STRUCTURE` / `OPTIONAL` /
//! `SECRET` / `ERROR` wrappers out, and lenient decoding of operation inputs in.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::{
    api::extract::PathId,
    error::{Error, Result},
};

/// `{"STRUCTURE": {"<canonical name>": {fields}}}`.
pub fn structure(name: &str, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let fields: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    json!({ "STRUCTURE": { name: fields } })
}

/// An optional field: `{"OPTIONAL": v}` or `{"OPTIONAL": null}`. The SDK
/// rejects an optional field sent without this wrapper.
pub fn optional(v: Option<Value>) -> Value {
    json!({ "OPTIONAL": v })
}

/// An optional field that is set.
pub fn set(v: impl Into<Value>) -> Value {
    optional(Some(v.into()))
}

/// An optional field that is not set.
pub fn unset() -> Value {
    optional(None)
}

/// A value of vAPI type `secret` (the login token).
pub fn secret(s: &str) -> Value {
    json!({ "SECRET": s })
}

/// `{"ERROR": {"<error type>": {messages, data, error_type, ...}}}`.
/// `extra` carries fields only some errors have (Unauthenticated's `challenge`).
pub fn error(
    vapi_type: &str,
    error_type: &str,
    messages: Vec<Value>,
    extra: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    let mut fields: Map<String, Value> = [
        ("messages".to_string(), Value::Array(messages)),
        ("data".to_string(), unset()),
        ("error_type".to_string(), set(error_type)),
    ]
    .into_iter()
    .collect();
    fields.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    json!({ "ERROR": { vapi_type: fields } })
}

/// A vAPI value as plain JSON: structures become their fields, optionals and
/// secrets their values, unset fields disappear. The same JSON `/api` takes, so
/// the surfaces share one spec type (and its refusals).
pub fn plain(v: Value) -> Value {
    match v {
        Value::Object(mut o) if o.len() == 1 => {
            if let Some(inner) = o.remove("OPTIONAL") {
                return plain(inner);
            }
            if let Some(Value::String(s)) = o.get("SECRET") {
                return Value::String(s.clone());
            }
            match o.remove("STRUCTURE") {
                Some(Value::Object(named)) if named.len() == 1 => {
                    let (_, fields) = named.into_iter().next().expect("one entry");
                    plain(fields)
                }
                Some(other) => json!({ "STRUCTURE": other }),
                None => plain_object(o),
            }
        }
        Value::Object(o) => plain_object(o),
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        other => other,
    }
}

fn plain_object(o: Map<String, Value>) -> Value {
    Value::Object(
        o.into_iter()
            .map(|(k, v)| (k, plain(v)))
            .filter(|(_, v)| !v.is_null())
            .collect(),
    )
}

/// The fields of one structure of a request, consumed field by field so that
/// whatever is left over can be rejected.
#[derive(Debug)]
pub struct Input {
    /// Name used in messages (`operation-input`, `create_spec`).
    what: String,
    fields: Map<String, Value>,
}

impl Input {
    /// The fields of `{"STRUCTURE": {"<name>": {...}}}`; a plain object is
    /// accepted too (hand-written clients). None when it is neither.
    pub fn from_structure(what: &str, value: Value) -> Option<Input> {
        let Value::Object(mut outer) = value else {
            return None;
        };
        let fields = match outer.remove("STRUCTURE") {
            Some(Value::Object(named)) if outer.is_empty() && named.len() == 1 => {
                match named.into_iter().next() {
                    Some((_, Value::Object(fields))) => fields,
                    _ => return None,
                }
            }
            Some(_) => return None,
            None => outer,
        };
        Some(Input {
            what: what.to_string(),
            fields,
        })
    }

    /// Takes a field, unwrapping `{"OPTIONAL": ...}` wherever the client put
    /// one: `None` when absent, `null` or an unset optional.
    fn take(&mut self, name: &str) -> Option<Value> {
        match self.fields.remove(name)? {
            Value::Object(mut o) if o.len() == 1 && o.contains_key("OPTIONAL") => {
                o.remove("OPTIONAL").filter(|v| !v.is_null())
            }
            Value::Null => None,
            v => Some(v),
        }
    }

    fn wrong_type(&self, name: &str, expected: &str) -> Error {
        Error::invalid_argument(
            "com.vmware.vapi.rpc.input.invalid_type",
            format!("Field {name} of {} must be {expected}.", self.what),
            &[name, &self.what, expected],
        )
    }

    /// A required string (ids, file names).
    pub fn string(&mut self, name: &str) -> Result<String> {
        self.opt_string(name)?.ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.vapi.rpc.input.missing_field",
                format!("Field {name} of {} is required.", self.what),
                &[name, &self.what],
            )
        })
    }

    pub fn opt_string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong_type(name, "a string")),
        }
    }

    pub fn opt_integer(&mut self, name: &str) -> Result<Option<i64>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "an integer")),
            Some(_) => Err(self.wrong_type(name, "an integer")),
        }
    }

    pub fn opt_structure(&mut self, name: &str) -> Result<Option<Input>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => Input::from_structure(name, v)
                .map(Some)
                .ok_or_else(|| self.wrong_type(name, "a structure")),
        }
    }

    /// A required structure read as the spec type `T` (the type `/api` reads; see [`plain`]).
    pub fn spec<T: DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        let value = self.fields.remove(name).map(plain).filter(|v| !v.is_null());
        let value = value.ok_or_else(|| {
            Error::invalid_argument(
                "com.vmware.vapi.rpc.input.missing_field",
                format!("Field {name} of {} is required.", self.what),
                &[name, &self.what],
            )
        })?;
        serde_json::from_value(value).map_err(|e| {
            Error::invalid_argument(
                "com.vmware.vapi.rpc.input.invalid_structure",
                format!("Field {name} of {} is not valid: {e}", self.what),
                &[name, &self.what, &e.to_string()],
            )
        })
    }

    /// A required id (NOT_FOUND when it is not even well-formed).
    pub fn id<T: PathId>(&mut self, name: &str) -> Result<T> {
        T::parse(&self.string(name)?)
    }

    /// Reads what `take` takes, then refuses whatever is left (see [`Input::finish`]).
    pub fn read<T>(mut self, take: impl FnOnce(&mut Input) -> Result<T>) -> Result<T> {
        let value = take(&mut self)?;
        self.finish()?;
        Ok(value)
    }

    /// Drops fields the operation accepts but does not use.
    pub fn ignore(&mut self, names: &[&str]) {
        for name in names {
            self.fields.remove(*name);
        }
    }

    /// Rejects fields the operation does not know. An unset optional is let
    /// through, as the vAPI runtime does, so newer clients that send extra
    /// optional fields unset still work.
    pub fn finish(self) -> Result<()> {
        let unexpected: Vec<&str> = self
            .fields
            .iter()
            .filter(|(_, v)| *v != &unset())
            .map(|(k, _)| k.as_str())
            .collect();
        if unexpected.is_empty() {
            return Ok(());
        }
        let list = unexpected.join(", ");
        Err(Error::invalid_argument(
            "com.vmware.vapi.rpc.input.unexpected_field",
            format!("Unexpected field(s) in {}: {list}.", self.what),
            &[&self.what, &list],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> Input {
        Input::from_structure("operation-input", v).expect("structure")
    }

    #[test]
    fn optionals_are_unwrapped_wherever_they_appear() {
        let mut i = input(json!({"STRUCTURE": {"operation-input": {
            "a": {"OPTIONAL": "x"}, "b": {"OPTIONAL": null}, "c": "y", "d": null,
            "n": {"OPTIONAL": 42}
        }}}));
        assert_eq!(i.opt_string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(i.opt_string("b").unwrap(), None);
        assert_eq!(i.string("c").unwrap(), "y");
        assert_eq!(i.opt_string("d").unwrap(), None);
        assert_eq!(i.opt_string("missing").unwrap(), None);
        assert_eq!(i.opt_integer("n").unwrap(), Some(42));
        i.finish().unwrap();
    }

    #[test]
    fn wrong_types_and_leftovers_are_invalid_arguments() {
        let mut i = input(json!({"x": 1, "y": "s", "z": {"OPTIONAL": null}}));
        assert!(i.opt_string("x").is_err());
        assert!(i.opt_integer("y").is_err());
        // z is an unset optional and passes; nothing else is left.
        i.finish().unwrap();
        let i = input(json!({"extra": "set"}));
        assert!(i.finish().is_err());
        let mut i = input(json!({}));
        assert!(i.string("required").is_err());
    }

    #[test]
    fn nested_structures_and_non_structures() {
        let mut i = input(json!({"spec": {"STRUCTURE": {"some.model": {"k": {"OPTIONAL": "v"}}}}}));
        let mut spec = i.opt_structure("spec").unwrap().unwrap();
        assert_eq!(spec.opt_string("k").unwrap().as_deref(), Some("v"));
        assert!(Input::from_structure("x", json!("text")).is_none());
        assert!(Input::from_structure("x", json!({"STRUCTURE": {"a": {}, "b": {}}})).is_none());
    }

    #[test]
    fn plain_json_of_vapi_values() {
        let v = json!({"STRUCTURE": {"com.vmware.content.library_model": {
            "name": {"OPTIONAL": "isos"}, "id": {"OPTIONAL": null},
            "storage_backings": {"OPTIONAL": [{"STRUCTURE": {"com.vmware.content.library.storage_backing": {
                "type": {"OPTIONAL": "DATASTORE"}, "datastore_id": {"OPTIONAL": "datastore-12"},
                "storage_uri": {"OPTIONAL": null}}}}]},
            "publish_info": {"OPTIONAL": null}, "password": {"SECRET": "s"}, "n": 3,
        }}});
        assert_eq!(
            plain(v),
            json!({"name": "isos", "password": "s", "n": 3,
                   "storage_backings": [{"type": "DATASTORE", "datastore_id": "datastore-12"}]})
        );
        let mut i = input(json!({"spec": {"STRUCTURE": {"x": {"name": {"OPTIONAL": "a"}}}}}));
        let spec: Map<String, Value> = i.spec("spec").unwrap();
        assert_eq!(spec["name"], "a");
        assert!(i.spec::<Map<String, Value>>("spec").is_err());
        let mut i = input(json!({"spec": "text"}));
        assert!(i.spec::<Map<String, Value>>("spec").is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(set("x"), json!({"OPTIONAL": "x"}));
        assert_eq!(unset(), json!({"OPTIONAL": null}));
        assert_eq!(secret("t"), json!({"SECRET": "t"}));
        let e = error(
            "com.vmware.vapi.std.errors.not_found",
            "NOT_FOUND",
            vec![],
            [],
        );
        assert_eq!(
            e,
            json!({"ERROR": {"com.vmware.vapi.std.errors.not_found": {
                "messages": [], "data": {"OPTIONAL": null}, "error_type": {"OPTIONAL": "NOT_FOUND"}
            }}})
        );
    }
}
