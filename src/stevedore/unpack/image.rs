//! Finds an image in an OCI layout and pairs its layers with the config's diff_ids.
