//! Facade specs for Propylon: parse OpenAPI 3.x documents, route requests by
//! path template, render upstream paths and serve one merged spec.
//!
//! Everything here takes strings or values and does no I/O, so the gateway
//! decides where specs come from and this crate stays easy to test.

pub mod merge;
pub mod router;
pub mod security;
pub mod spec;
pub mod template;
pub mod validate;

pub use merge::{merge_specs, GatewayAnswers, MergeError, MergeInput};
pub use router::{PathParams, RouteError, RouteLookup, RouteTable, RouteTableBuilder};
pub use spec::{FacadeSpec, SpecError, SpecOperation};
pub use template::{PathTemplate, TemplateError};
pub use validate::{FieldError, RequestValidator, UnsupportedMediaType};
