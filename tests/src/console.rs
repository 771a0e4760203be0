//! The web console over plain HTTPS, as a browser would use it but without one: cookies kept
//! by hand, form tokens read from the pages, redirects not followed, so tests can check every
//! header, cookie flag and status the provisioner answers with.

use crate::provisioner::ProvisionerProc;
use reqwest::header::{HeaderMap, SET_COOKIE};
use std::collections::BTreeMap;

/// One answer: status, headers and body text.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
}

impl Answer {
    /// The `Set-Cookie` lines.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The `value` of the hidden input named `name` in the body.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }

    /// The text inside the element with `id` (up to the first close of its tag name: enough for
    /// the console's pages, which do not nest an element in one of its own kind), tags removed.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\"");
        let at = self.body.find(&marker)?;
        let open = self.body[..at].rfind('<')?;
        let tag: String = self.body[open + 1..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let inner_start = at + self.body[at..].find('>')? + 1;
        let inner_end = inner_start + self.body[inner_start..].find(&format!("</{tag}>"))?;
        let mut text = String::new();
        let mut in_tag = false;
        for c in self.body[inner_start..inner_end].chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
}

/// A browser-like client of one provisioner's console.
#[derive(Debug)]
pub struct ConsoleClient {
    http: reqwest::Client,
    base: String,
    /// Cookies by name, as the server last set them.
    pub cookies: BTreeMap<String, String>,
    /// The `Origin` sent with posts (the console's own, unless a test changes it).
    pub origin: String,
}

impl ConsoleClient {
    /// A client trusting the provisioner's CA, with no cookies.
    pub fn new(prov: &ProvisionerProc) -> Self {
        Self::for_url(&prov.url, &prov.ca_file)
    }

    /// A client of the provisioner at `url` (`https://HOST:PORT`) trusting the CA in `ca_file`.
    pub fn for_url(url: &str, ca_file: &std::path::Path) -> Self {
        let ca = rampart_certs::load_certs(ca_file).unwrap();
        let tls = rampart_certs::client_config(ca, &[b"http/1.1"]).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: url.to_owned(),
            cookies: BTreeMap::new(),
            origin: url.to_owned(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let answer = Answer { status, headers, body };
        for line in answer.set_cookies() {
            let pair = line.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let removed = line.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if removed {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        answer
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.finish(request).await
    }

    /// `POST path` with a form body and this client's `Origin`.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.origin)
            .form(fields);
        self.finish(request).await
    }

    /// `POST path` with a JSON body and, if given, an `Authorization` header.
    pub async fn post_json(&mut self, path: &str, authorization: Option<&str>, body: &serde_json::Value) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        self.finish(request).await
    }

    /// Signs in with a password and a code; the answer of the sign-in post.
    pub async fn sign_in(&mut self, username: &str, password: &str, code: &str) -> Answer {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.hidden("csrf").expect("the sign-in form carries a token");
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }

    /// The form token of the signed-in session, read from the home page.
    pub async fn session_token(&mut self) -> String {
        let home = self.get("/console/").await;
        assert_eq!(home.status, 200, "signed in: {}", home.body);
        home.hidden("csrf").expect("the page carries the session's form token")
    }
}
