//! Reads distribution's access log (gorilla's Apache "combined" format,
//! written to stdout next to the logrus lines).
//!
//! distribution logs method, URI, status, size and User-Agent per request,
//! at any log level; it never logs `Accept` or `Authorization`.

/// One request as the registry's access log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    pub method: String,
    /// The request target, e.g. `/v2/tank/oci-image/manifests/v1`.
    pub uri: String,
    /// `HTTP/1.1`, `HTTP/2.0`
    pub proto: String,
    pub status: u16,
    /// Response body bytes written (0 for HEAD and redirects).
    pub bytes: u64,
    pub user_agent: String,
}

impl RegistryRequest {
    /// The URI without its query: `/v2/tank/oci-image/blobs/sha256:…`.
    pub fn path(&self) -> &str {
        self.uri.split_once('?').map_or(&self.uri, |(p, _)| p)
    }

    /// The query string, as sent (distribution logs it and ignores what it
    /// does not know, such as containerd's `ns=`).
    pub fn query(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, q)| q)
    }

    /// A blob read (GET or HEAD), not an upload.
    pub fn is_blob(&self) -> bool {
        self.path().contains("/blobs/") && !self.path().contains("/blobs/uploads/")
    }

    /// A manifest read or write, by tag or digest.
    pub fn is_manifest(&self) -> bool {
        self.path().contains("/manifests/")
    }

    /// The digest or tag at the end of a blob or manifest path.
    pub fn reference(&self) -> Option<&str> {
        (self.is_blob() || self.is_manifest())
            .then(|| self.path().rsplit('/').next())
            .flatten()
    }
}

/// The access-log lines in `log`; other lines are skipped.
pub(crate) fn parse(log: &str) -> Vec<RegistryRequest> {
    log.lines().filter_map(parse_line).collect()
}

/// `127.0.0.1 - - [26/Nov/2026:22:47:20 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`
fn parse_line(line: &str) -> Option<RegistryRequest> {
    if line.starts_with("time=") {
        return None;
    }
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let uri = parts.next()?.to_owned();
    let proto = parts.next().unwrap_or_default().to_owned();
    let mut fields = rest.splitn(3, ' ');
    let status = fields.next()?.parse().ok()?;
    let bytes = fields.next()?.parse().unwrap_or(0);
    // `"referer" "user agent"`; the agent is the last quoted string.
    let quoted = fields.next()?.trim_end();
    let user_agent = quoted
        .strip_suffix('"')?
        .rsplit_once(" \"")
        .map(|(_, ua)| ua.to_owned())?;
    Some(RegistryRequest {
        method,
        uri,
        proto,
        status,
        bytes,
        user_agent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_combined_lines_and_skips_logrus_ones() {
        let log = "time=\"2026-11-26T22:47:20Z\" level=info msg=\"response completed\"\n\
            127.0.0.1 - - [26/Nov/2026:22:47:20 +0000] \"GET /v2/x/manifests/v1 HTTP/1.1\" 404 92 \"\" \"tank/0.1 (a b)\"\n\
            127.0.0.1 - - [26/Nov/2026:22:47:21 +0000] \"HEAD /v2/x/blobs/sha256:ab HTTP/1.1\" 307 0 \"\" \"\"\n";
        let r = parse(log);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].method, "GET");
        assert_eq!(r[0].uri, "/v2/x/manifests/v1");
        assert_eq!(r[0].proto, "HTTP/1.1");
        assert_eq!(r[0].status, 404);
        assert_eq!(r[0].bytes, 92);
        assert_eq!(r[0].user_agent, "tank/0.1 (a b)");
        assert_eq!(r[1].status, 307);
        assert_eq!(r[1].user_agent, "");
        assert!(r[0].is_manifest() && !r[0].is_blob());
        assert_eq!(r[0].reference(), Some("v1"));
        assert!(r[1].is_blob() && !r[1].is_manifest());
        assert_eq!(r[1].reference(), Some("sha256:ab"));
    }

    #[test]
    fn splits_the_query_off() {
        let log = "127.0.0.1 - - [26/Nov/2026:22:47:20 +0000] \"GET /v2/x/blobs/sha256:ab?ns=docker.io HTTP/1.1\" 200 3 \"\" \"tank\"\n\
            127.0.0.1 - - [26/Nov/2026:22:47:20 +0000] \"POST /v2/x/blobs/uploads/ HTTP/1.1\" 202 0 \"\" \"tank\"\n";
        let r = parse(log);
        assert_eq!(r[0].path(), "/v2/x/blobs/sha256:ab");
        assert_eq!(r[0].query(), Some("ns=docker.io"));
        assert_eq!(r[0].reference(), Some("sha256:ab"));
        assert!(r[0].is_blob());
        assert_eq!(r[1].query(), None);
        assert!(!r[1].is_blob());
    }
}
