//! What the three HTTP surfaces (the license protocol, the status page, the admin API; and the
//! vendor service) share: the one error type and its mapping from the domain's errors
//! ([`error`]), extractors that answer in the API's error shape ([`extract`]) and how the OpenAPI
//! documents list those answers ([`documented`]), the layers every
//! port has ([`layers`]), the connection loop with its caps and timeouts ([`accept`]), TLS with reloaded certificates
//! ([`tls`]) and JSON bodies for the
//! answers of the HTTP parser ([`parse_errors`]), and the
//! embedded web UI ([`assets`]).
//!
//! Its only knowledge of the domain is the error enums it maps; nothing in the domain depends on
//! it.

pub mod accept;
pub mod assets;
pub mod documented;
pub mod error;
pub mod extract;
pub mod layers;
pub mod parse_errors;
pub mod tls;

pub use self::error::AppError;
