//! The compact tables the RIB and the FIB keep per prefix: at a full table
//! (a million prefixes and more) every byte of a per-prefix record is a
//! megabyte, so both hold prefixes in [`PrefixMap`] and refer to shared
//! values (next-hop sets) by a 4-byte [`Id`] from [`Numbered`].

mod numbered;
mod prefix_map;

pub use numbered::{Id, Numbered};
pub use prefix_map::PrefixMap;
