//! Versions, quality gates and the registry: what decides that a detector ships.

pub mod gates;
pub mod registry;
pub mod version;
