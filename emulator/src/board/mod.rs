//! board
pub mod console;
pub mod machine;
pub mod frames;
pub mod profile;
pub mod unmodelled;
