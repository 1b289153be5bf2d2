//! Targets and bodies used by rows of many classes.

pub const MR: &str = "/api/v4/projects/101/merge_requests/1";
pub const HOOKS: &str = "/api/v4/projects/101/hooks";
pub const GROUP_LABELS: &str = "/api/v4/groups/acme/labels";
pub const LABELS_JSON: &str = r#"{"add_labels":"echoes/a"}"#;
pub const HOOK_JSON: &str = r#"{"url":"https://api.echoeshq.com/hooks/1"}"#;
pub const LABEL_FORM: &str = "name=echoes%2Fcreated&color=%23428BCA";
