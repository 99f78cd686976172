//! The checksum a server announces for a file (`checksum_info`) and the
//! hasher that checks it; vSphere may name SHA1 (the default), MD5, SHA256 or SHA512.

use sha2::digest::DynDigest;

use crate::client::{
    content::ChecksumInfo,
    failure::{Failure, Result},
};

/// The wire enum (`SHA1`, `MD5`, `SHA256`, `SHA512`), shared with the server side.
pub use crate::domain::models::ChecksumAlgorithm as Algorithm;

/// What the client does with an algorithm.
pub trait AlgorithmExt {
    /// `checksum_info.algorithm` as VMware spells it.
    fn name(self) -> &'static str;
    /// How people write it in messages.
    fn display(self) -> &'static str;
    /// The `--json` summary key for its digest (`sha256`, ...).
    fn key(self) -> &'static str;
    fn hasher(self) -> Box<dyn DynDigest + Send>;
    fn hex_len(self) -> usize;
}

impl AlgorithmExt for Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hasher(self) -> Box<dyn DynDigest + Send> {
        use sha2::Digest;
        match self {
            Algorithm::Sha1 => Box::new(sha1::Sha1::new()),
            Algorithm::Md5 => Box::new(md5::Md5::new()),
            Algorithm::Sha256 => Box::new(sha2::Sha256::new()),
            Algorithm::Sha512 => Box::new(sha2::Sha512::new()),
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 40,
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// An expected checksum: algorithm and lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl Checksum {
    /// Reads `checksum_info`; an absent algorithm means SHA1 (VMware's rule).
    pub fn from_info(file: &str, info: &ChecksumInfo) -> Result<Checksum> {
        let algorithm = match info.algorithm.as_deref().map(str::to_ascii_uppercase) {
            None => Algorithm::Sha1,
            Some(a) => match a.as_str() {
                "SHA1" => Algorithm::Sha1,
                "MD5" => Algorithm::Md5,
                "SHA256" => Algorithm::Sha256,
                "SHA512" => Algorithm::Sha512,
                _ => {
                    return Err(Failure::other(format!(
                        "{file}: the server announces a checksum algorithm this client does not \
                         know ({a}); the file cannot be verified"
                    )))
                }
            },
        };
        let hex = info.checksum.trim().to_ascii_lowercase();
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::other(format!(
                "{file}: the server's {} checksum {:?} is malformed; the file cannot be verified",
                algorithm.display(),
                info.checksum
            )));
        }
        Ok(Checksum { algorithm, hex })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(algorithm: Option<&str>, checksum: &str) -> ChecksumInfo {
        ChecksumInfo {
            algorithm: algorithm.map(String::from),
            checksum: checksum.into(),
        }
    }

    #[test]
    fn reads_checksum_info() {
        let sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let c = Checksum::from_info("f", &info(Some("SHA256"), sha256)).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.hex, sha256.to_lowercase());
        let mut h = c.algorithm.hasher();
        h.update(b"");
        assert_eq!(hex::encode(h.finalize()), c.hex);
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        assert_eq!(
            Checksum::from_info("f", &info(None, sha1))
                .unwrap()
                .algorithm,
            Algorithm::Sha1
        );
        assert!(Checksum::from_info("f", &info(Some("SHA256"), sha1)).is_err());
        assert!(Checksum::from_info("f", &info(Some("CRC32"), "00")).is_err());
    }
}
