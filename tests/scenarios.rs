//! Scenario files and the scenario runner, end to end on the real guest.
