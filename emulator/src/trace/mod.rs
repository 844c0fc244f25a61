//! Event stream and writers.
