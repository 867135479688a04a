//! Client ID metadata documents (SPEC §2.5) on an in-process host, which needs to be told to trust
//! the test's own certificate authority (`GPT_USER_OUTBOUND_CA_FILE`) and whose dev mode the test
//! chooses: the official MCP SDK names itself by a document served over HTTPS on 127.0.0.1 (dev
//! mode lets the host fetch from loopback), and the same document is refused outside dev mode —
//! the page says the client is unknown and redirects nowhere. The refusal of every other address
//! class is asserted on the host's own rules (`host/src/outbound.rs`), since a test cannot own a
//! private or link-local address.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::helpers::{Backend, Options, PASSPHRASE, TestApp, email, spawn_with};
use crate::oauth_client::{Way, assert_acts_as, sdk_client};

/// A certificate authority and a certificate it signed for `127.0.0.1`, made once per run with
/// `openssl` (PEM files in a temporary directory).
struct TestCa {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gpt-user-test-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl runs (scripts/setup.sh installs it)");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(&[&["req", "-x509"][..], &ec, &["-days", "2", "-subj", "/CN=gpt-user test CA", "-keyout", "ca.key", "-out", "ca.pem"]].concat());
        openssl(&[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out", "leaf.csr"]].concat());
        std::fs::write(dir.join("leaf.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ]);
        TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("leaf.pem"),
            key: dir.join("leaf.key"),
        }
    })
}

fn trust_test_ca(config: &mut gpt_user::Config) {
    config.outbound_ca_file = Some(test_ca().ca.clone());
}

/// A host with a service key that trusts the test CA, in dev mode or not.
async fn app(dev: bool) -> TestApp {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some("oauth-cimd-service-key-51d0");
    options.dev = Some(dev);
    options.config = Some(trust_test_ca);
    spawn_with(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_mcp_sdk_is_named_by_a_client_id_metadata_document_over_https() {
    let app = app(true).await;
    let di = email("oauth-cimd");
    app.active_user(&di).await;
    app.remember_secret(PASSPHRASE);
    let ca = test_ca();
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let summary = sdk_client(&app, &di, Way::Passphrase, &["--client-metadata-tls", cert, key]).await;
    assert_acts_as(&summary, &di);
    assert_eq!(summary["registered"], false, "the document named the client: {summary}");
    let client_id = summary["client_id"].as_str().unwrap();
    assert!(client_id.starts_with("https://127.0.0.1:") && client_id.ends_with("/oauth/client.json"), "{client_id}");
}

/// Serves `document` (with `{url}` replaced by its own URL) at `/oauth/client.json` over HTTPS
/// with the test CA's certificate, on 127.0.0.1; the child and the URL.
fn serve_document(document: &str) -> (Child, String) {
    use std::io::BufRead as _;
    const SERVER: &str = r#"
import http.server, ssl, sys
doc = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = doc.replace("{url}", url).encode()
        self.send_response(200 if self.path == "/oauth/client.json" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("fetched", flush=True)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = c.wrap_socket(s.socket, server_side=True)
url = "https://127.0.0.1:%d/oauth/client.json" % s.server_address[1]
print(url, flush=True)
s.serve_forever()
"#;
    let ca = test_ca();
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .arg(&ca.cert)
        .arg(&ca.key)
        .arg(document)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_owned())
}

/// `GET /oauth/authorize` for the client `client_id` (PKCE S256, a loopback redirect URI), with no
/// redirect followed: the page, an error page or the redirect itself.
fn authorize(app: &TestApp, client_id: &str) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let query = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:7777/callback"),
        ("state", "st-cimd"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ];
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(app.url("/oauth/authorize")).query(&query).header("accept-language", "en").send()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_on_a_loopback_address_is_refused_outside_dev_mode() {
    let document = r#"{"client_id": "{url}", "client_name": "Loopback Chat", "redirect_uris": ["http://127.0.0.1:7777/callback"]}"#;
    let (mut server, url) = serve_document(document);
    let authorize = |app: &TestApp| authorize(app, &url);

    // Outside dev mode: the address is refused before anything is sent to it.
    let public = app(false).await;
    let r = authorize(&public).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none(), "no redirect");
    let page = r.text().await.unwrap();
    assert!(!page.contains("Loopback Chat"), "the document was not read");
    // In dev mode the same document names the client (so the refusal above is the address's).
    let dev = app(true).await;
    let r = authorize(&dev).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Loopback Chat"), "the page names the document's client");
    server.kill().ok();
    let out = server.wait_with_output().unwrap();
    let fetched = String::from_utf8_lossy(&out.stdout).matches("fetched").count();
    assert_eq!(fetched, 1, "fetched by the dev host only");
}

/// A document server that takes the connection and never answers holds up the request that named
/// it, and nothing else: the OAuth endpoints answer meanwhile — from the very instance whose fetch
/// waits (`component_instances` stays 1; a blocking fetch took it out of service, and they needed a
/// second) — and the waiting request is answered at the fetch's own 5 s deadline (the host's
/// outbound limit, 10 s, is not what ends it), its client unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_server_that_never_answers_holds_up_only_the_request_that_named_it() {
    let mut options = Options::new(Backend::Sqlite);
    options.api_keys = Some("oauth-cimd-service-key-51d0");
    options.dev = Some(true);
    options.config = Some(|c| {
        trust_test_ca(c);
        crate::metrics::with_metrics(c);
    });
    let app = spawn_with(options).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/oauth/client.json", listener.local_addr().unwrap().port());
    let (accepted, fetching) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (connection, _) = listener.accept().await.unwrap();
        let _ = accepted.send(());
        let _held = connection;
        std::future::pending::<()>().await;
    });
    let started = std::time::Instant::now();
    let authorize = tokio::spawn(authorize(&app, &url));
    tokio::time::timeout(std::time::Duration::from_secs(10), fetching).await.expect("the host fetches the document").unwrap();

    for _ in 0..3 {
        let r = reqwest::get(app.url("/.well-known/oauth-authorization-server")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(!authorize.is_finished(), "answered while the authorization request still waits on its document");
    }
    let during = crate::metrics::scrape(&app).await;
    assert_eq!(crate::metrics::value(&during, "gpt_user_component_instances"), 1.0, "the instance whose fetch waits served them");
    let r = authorize.await.unwrap().unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 400, "at the fetch's deadline the client is unknown");
    assert!(waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(8), "ended by the fetch's 5 s deadline: {waited:?}");
    assert!(r.headers().get("location").is_none(), "no redirect");
}
