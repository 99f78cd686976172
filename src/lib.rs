//! download-sessions: a persistent, multi-instance implementation of the
//! vSphere Content Library download-session service.

pub mod api;
pub mod client;
pub mod config;
pub mod dataplane;
pub mod domain;
pub mod edge;
pub mod embedded_pg;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod service;
pub mod startup;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod validity;
pub mod worker;

pub use startup::Application;
