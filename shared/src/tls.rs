//! TLS for outbound HTTPS clients (football-data.org, the probe's calls to the public API):
//! rustls with aws-lc-rs, the one crypto provider in the process (the AWS SDK, sqlx, redis and
//! jsonwebtoken use it too), and the webpki root store built into the binary, so no system
//! certificate store is read at cold start. Built once per process, on first use.

use std::sync::{Arc, LazyLock};

static CLIENT_CONFIG: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
});

/// The rustls client configuration every outbound HTTPS client uses.
pub fn client_config() -> rustls::ClientConfig {
    CLIENT_CONFIG.clone()
}

/// A reqwest client builder that uses [`client_config`]. reqwest is compiled without a crypto
/// provider of its own; without a preconfigured TLS setup it would panic at `build()`.
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().use_preconfigured_tls(client_config())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_http_client_builds_without_any_process_wide_provider() {
        super::http_client().build().expect("a reqwest client with the preconfigured TLS");
    }
}
