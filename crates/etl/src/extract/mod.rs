//! Reading the raw input: listing it, decoding it, and the scan operator.

pub mod decode;
pub mod listing;
mod records;
pub mod scan;
mod text;
mod values;
