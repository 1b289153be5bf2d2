//! `glgate doctor`.
