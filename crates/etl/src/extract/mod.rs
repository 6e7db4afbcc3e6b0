//! Reading the raw input: listing it, decoding it, and the scan operator.

pub mod decode;
pub mod listing;
pub mod scan;
mod values;
