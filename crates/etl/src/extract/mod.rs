//! Reading the raw input: listing it, the scan tasks' file lists, decoding, and the scan operator.

pub mod decode;
pub mod file_list;
pub mod listing;
mod records;
pub mod scan;
mod text;
mod values;
