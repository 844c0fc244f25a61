//! alloc_contig_range tests: named cases, injections, and the property test.
use super::*;
use crate::migrate::tests::{FakeEnv, World, RAM};
