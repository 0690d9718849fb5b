//! Reading the mirror settings' files. (Interim: the named file only; the
//! default search and drop-ins come with the loaders.)

use std::path::Path;

use super::registries_conf::RegistriesConf;
use crate::stevedore::error::{Error, ErrorKind, Reason, Result};

/// The registries.conf at `path`; `None`: none (the default search is to come).
pub fn registries_conf(path: Option<&Path>) -> Result<RegistriesConf> {
    let Some(path) = path else {
        return Ok(RegistriesConf::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::BadInput,
            Reason::RegistriesConf,
            format!("{}: {e}", path.display()),
        )
    })?;
    RegistriesConf::parse(&text, &path.display().to_string())
}
