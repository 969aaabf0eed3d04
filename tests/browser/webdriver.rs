//! Just enough W3C WebDriver to drive headless Chromium through chromedriver: JSON over HTTP
//! with `ureq`, which the trainer already builds, so the browser test adds no dependencies.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A chromedriver process, stopped when dropped.
pub struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

/// One browser session, closed when dropped.
pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl Driver {
    pub fn start(chromedriver: &Path) -> Result<Self, String> {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(120))
                .build(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(v) = driver.request("GET", "/status", None)
                && v["ready"].as_bool() == Some(true)
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = self
            .agent
            .request(method, &url)
            .set("Content-Type", "application/json");
        let response = match body {
            Some(b) => request.send_string(&b.to_string()),
            None => request.call(),
        };
        let text = match response {
            Ok(r) => r.into_string().map_err(|e| e.to_string())?,
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                return Err(format!(
                    "{method} {path}: HTTP {code}: {}",
                    v["value"]["message"].as_str().unwrap_or(&text)
                ));
            }
            Err(e) => return Err(format!("{method} {path}: {e}")),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}: {text}"))?;
        Ok(v["value"].clone())
    }

    pub fn session(&self, chromium: &Path, args: &[String]) -> Result<Session<'_>, String> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "script": 120_000, "pageLoad": 120_000 },
                }
            }
        });
        let v = self.request("POST", "/session", Some(caps))?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?
            .to_string();
        Ok(Session { driver: self, id })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session<'_> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.driver
            .request(method, &format!("/session/{}{path}", self.id), body)
    }

    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn eval(&self, script: &str, args: Value) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` until it returns something truthy, or fails after `timeout`.
    pub fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, json!([]))?;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v.as_str() != Some("");
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> Result<String, String> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|id| id.as_str())
            .map(String::from)
            .ok_or_else(|| format!("no element {css}"))
    }

    /// Gives files to an `<input type=file>` (several at once when it is `multiple`).
    pub fn upload(&self, css: &str, files: &[&Path]) -> Result<(), String> {
        let id = self.element(css)?;
        let text: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text.join("\n") })),
        )
        .map(|_| ())
    }

    pub fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .map(|_| ())
    }

    /// A real pointer drag, as a mouse gives it: press at the centre of the element `css`,
    /// move by (`dx`, `dy`) CSS pixels in `steps` moves, release.
    pub fn drag(&self, css: &str, dx: i64, dy: i64, steps: i64) -> Result<(), String> {
        let id = self.element(css)?;
        let mut actions = vec![
            json!({ "type": "pointerMove", "duration": 0, "x": 0, "y": 0,
                    "origin": { "element-6066-11e4-a52e-4f735466cecf": id } }),
            json!({ "type": "pointerDown", "button": 0 }),
        ];
        for i in 1..=steps.max(1) {
            let (x, y) = (dx * i / steps.max(1), dy * i / steps.max(1));
            let (px, py) = (dx * (i - 1) / steps.max(1), dy * (i - 1) / steps.max(1));
            actions.push(
                json!({ "type": "pointerMove", "duration": 40, "origin": "pointer",
                                 "x": x - px, "y": y - py }),
            );
        }
        actions.push(json!({ "type": "pointerUp", "button": 0 }));
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{
                "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
                "actions": actions,
            }]})),
        )?;
        self.cmd("DELETE", "/actions", None).map(|_| ())
    }

    /// Presses keys (W3C key values, e.g. "\u{E014}" for the right arrow) on the focused
    /// element, each down then up; `shift` holds Shift meanwhile.
    pub fn keys(&self, keys: &[&str], shift: bool) -> Result<(), String> {
        let mut actions = Vec::new();
        if shift {
            actions.push(json!({ "type": "keyDown", "value": "\u{E008}" }));
        }
        for k in keys {
            actions.push(json!({ "type": "keyDown", "value": k }));
            actions.push(json!({ "type": "keyUp", "value": k }));
        }
        if shift {
            actions.push(json!({ "type": "keyUp", "value": "\u{E008}" }));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        )?;
        self.cmd("DELETE", "/actions", None).map(|_| ())
    }

    /// The browser console's errors so far (chromedriver hands each entry out once).
    pub fn console_errors(&self) -> Vec<String> {
        match self.cmd("POST", "/se/log", Some(json!({ "type": "browser" }))) {
            Ok(Value::Array(entries)) => entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or("").to_string())
                .collect(),
            Ok(other) => vec![format!("unexpected log: {other}")],
            Err(e) => vec![format!("console unavailable: {e}")],
        }
    }

    pub fn set_window(&self, width: u32, height: u32) -> Result<(), String> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .map(|_| ())
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd("GET", "/screenshot", None)?;
        base64_decode(v.as_str().ok_or("screenshot is not a string")?)
    }

    /// A PNG of the whole page, however tall (Chrome DevTools' full-page capture).
    pub fn full_screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Page.captureScreenshot",
                "params": { "format": "png", "captureBeyondViewport": true },
            })),
        )?;
        base64_decode(v["data"].as_str().ok_or("no screenshot data")?)
    }

    /// The browser console so far (chromedriver's log endpoint), for failure reports.
    pub fn console(&self) -> String {
        match self.cmd("POST", "/se/log", Some(json!({ "type": "browser" }))) {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Ok(other) => other.to_string(),
            Err(e) => format!("(console unavailable: {e})"),
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.cmd("DELETE", "", None);
    }
}

pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c}")),
        } as u32)
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    Ok(out)
}
