//! The compact tables the RIB and the FIB keep per prefix: at a full table
//! (a million prefixes and more) every byte of a per-prefix record is a
//! megabyte, so both hold prefixes in [`PrefixMap`] and refer to shared
//! values (next-hop sets) by a 4-byte [`Id`] from [`Numbered`]. And
//! [`fib`], the contract between the two: the changes the RIB hands the
//! FIB and the next-hop verdicts the FIB reports back.

pub mod fib;
mod numbered;
mod prefix_map;

pub use numbered::{Id, Numbered};
pub use prefix_map::PrefixMap;
