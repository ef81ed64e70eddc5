//! Everything avm reads or writes, one reader and one writer per artifact. Formats know nothing
//! of the stages that use them.

pub mod contract;
pub mod foreign;
pub mod labels;
pub mod mapping;
pub mod matfile;
pub mod recording;
pub mod scaler;
pub mod scores;
pub mod table;
pub mod windows;
