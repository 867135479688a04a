//! The components' outbound HTTP (`wasi:http/client@0.3.0` of the flow components, and
//! `wasi:http/outgoing-handler` of WASIp2 ones: one hook serves both): what SPEC §2.5 needs it for
//! is a client ID metadata document, so it is held to the rules of a fetch from the public
//! Internet. The name is resolved here, **every** address it resolves to must be public (not
//! private, loopback, link-local, shared, multicast or unspecified — loopback is allowed in dev
//! mode only), and the connection goes to one of the addresses checked, so a name that resolves
//! again to something else (DNS rebinding) is not asked twice. Outside dev mode only `https`.
//! TLS verifies against the Mozilla roots (`webpki-roots`) plus the operator's own
//! (`GPT_USER_OUTBOUND_CA_FILE`). No redirect is followed: the component sees the `3xx`.

use std::net::{IpAddr, SocketAddr};

use gpt_user_core::net::refused;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The rules of one server: dev mode (loopback allowed) and the trusted roots.
pub struct Policy {
    pub dev: bool,
    roots: Arc<rustls::RootCertStore>,
}

impl Policy {
    /// The Mozilla roots plus the certificates of `ca_file` (PEM), if given.
    pub fn new(dev: bool, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        if let Some(path) = ca_file {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .with_context(|| format!("GPT_USER_OUTBOUND_CA_FILE {}: not a PEM file of certificates", path.display()))?;
            anyhow::ensure!(!certs.is_empty(), "GPT_USER_OUTBOUND_CA_FILE {}: no certificate in it", path.display());
            for cert in certs {
                roots.add(cert).with_context(|| format!("GPT_USER_OUTBOUND_CA_FILE {}: a certificate rustls refuses", path.display()))?;
            }
        }
        Ok(Self { dev, roots: Arc::new(roots) })
    }
}

/// The addresses of `bare:port` (a name, or an address without brackets), all of them checked:
/// `Err` if any one is refused (a name with one private address among public ones is refused as a
/// whole).
async fn resolve(bare: &str, port: u16, dev: bool) -> Result<Vec<SocketAddr>, Error> {
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|_| Error::DestinationNotFound)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    if let Some(why) = addrs.iter().find_map(|a| refused(a.ip(), dev)) {
        tracing::info!(host = bare, why, "outbound request refused: not a public address");
        return Err(Error::DestinationIpProhibited);
    }
    Ok(addrs)
}

/// The hooks of one request's store.
pub struct Hooks(pub Arc<Policy>);

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(hyper::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>> + Send> {
        let policy = self.0.clone();
        Box::new(async move {
            let response = send(&policy, request, options).await?;
            Ok((response, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

async fn send(policy: &Policy, mut request: Request<WasiBody>, options: Option<RequestOptions>) -> Result<hyper::Response<WasiBody>, Error> {
    let uri = request.uri().clone();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if policy.dev => false,
        _ => return Err(Error::HttpRequestDenied),
    };
    // The host without an IPv6 literal's brackets: what is resolved and what TLS verifies.
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs = resolve(&host, port, policy.dev).await?;
    if !https && !addrs.iter().all(|a| a.ip().to_canonical().is_loopback()) {
        // Plain http in dev mode, and only to this machine.
        return Err(Error::HttpRequestDenied);
    }
    let limit = |pick: fn(&RequestOptions) -> Option<Duration>| options.as_ref().and_then(pick).unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10));
    let (connect_timeout, first_byte_timeout) = (limit(|o| o.connect_timeout), limit(|o| o.first_byte_timeout));
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&addrs[..]))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(|_| Error::ConnectionRefused)?;
    *request.uri_mut() = hyper::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = if https {
        let config = rustls::ClientConfig::builder().with_root_certificates(policy.roots.clone()).with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| Error::HttpRequestUriInvalid)?;
        let tls = tokio::time::timeout(connect_timeout, tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(|_| Error::TlsCertificateError)?;
        exchange(TokioIo::new(tls), request, first_byte_timeout).await?
    } else {
        exchange(TokioIo::new(stream), request, first_byte_timeout).await?
    };
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

/// One HTTP/1.1 request on a fresh connection, the connection driven in its own task.
async fn exchange<S>(io: TokioIo<S>, request: Request<WasiBody>, first_byte_timeout: Duration) -> Result<hyper::Response<Incoming>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection is driven on its own, and given up after a while whatever the guest does
    // with the response (a document server that trickles does not hold a socket forever).
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
    });
    tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_refused_when_any_of_its_addresses_is() {
        assert!(matches!(resolve("localhost", 443, false).await, Err(Error::DestinationIpProhibited)));
        assert!(matches!(resolve("::1", 443, false).await, Err(Error::DestinationIpProhibited)));
        assert!(matches!(resolve("169.254.169.254", 80, false).await, Err(Error::DestinationIpProhibited)));
        assert_eq!(resolve("127.0.0.1", 8443, true).await.unwrap(), vec!["127.0.0.1:8443".parse().unwrap()]);
    }
}
