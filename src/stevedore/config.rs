//! How patient, persistent and far-reaching a client's requests are: the
//! knobs every HTTP client of a process shares.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The longest wait for the next byte; a body that keeps flowing is
    /// never cut off.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first retry waits this long, then twice as long each time.
    pub backoff_base: Duration,
    /// A `Retry-After` longer than this is cut to it: a server must not be
    /// able to park a pull for hours.
    pub max_retry_after: Duration,
    pub max_redirects: usize,
    /// The whole token response, from request to last byte: a token server
    /// that trickles must not hold a registry's calls for longer.
    pub token_timeout: Duration,
    /// Names answered without DNS, as curl's `--resolve` (the port is the
    /// URL's): for tests that need a non-loopback name. Empty by default.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(15),
            max_retries: 3,
            backoff_base: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            max_redirects: 10,
            token_timeout: Duration::from_secs(60),
            resolve: Vec::new(),
        }
    }
}
