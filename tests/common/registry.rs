//! A real OCI registry for tests: Debian's `docker-registry` on 127.0.0.1
//! with a free port and a temp storage directory, images built with `umoci`
//! and pushed with `skopeo`. The registry is stopped by its process id when
//! the handle drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary, from Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "docker-registry";

pub struct TestRegistry {
    child: Option<Child>,
    port: u16,
    pub dir: tempfile::TempDir,
}

fn tool(name: &str) -> &str {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(found, "{name} is not installed: run ./scripts/test.sh, which installs docker-registry, skopeo and umoci");
    name
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestRegistry {
    /// Starts a registry and waits until it listens.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(None)
    }

    /// Starts a registry that requires basic auth (htpasswd, bcrypt) as
    /// `user` / `password` when given.
    pub fn start_with(login: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        // Our own minimal config: never the package's default, which listens
        // on every interface.
        let mut config_text = "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
             rootdirectory: /nonexistent\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n"
            .to_string();
        if let Some((user, password)) = login {
            let htpasswd = dir.path().join("htpasswd");
            let hash = bcrypt::hash(password, 4).unwrap();
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config_text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: provledger-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, config_text).unwrap();
        let port = free_port();
        let child = Command::new(tool(REGISTRY_BIN))
            .arg("serve")
            .arg(&config)
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path().join("storage"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let r = TestRegistry { child: Some(child), port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen on 127.0.0.1:{port}");
            std::thread::sleep(Duration::from_millis(25));
        }
        r
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the registry (SIGKILL by process id) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Deletes a manifest by digest.
    pub fn delete(&self, repo: &str, digest: &str) {
        skopeo(&["delete", "--tls-verify=false", &format!("docker://{}/{repo}@{digest}", self.host())]);
    }

    /// The digest `skopeo inspect` reports for a reference.
    pub fn inspect_digest(&self, reference: &str) -> String {
        let out =
            skopeo(&["inspect", "--tls-verify=false", "--format", "{{.Digest}}", &format!("docker://{reference}")]);
        out.trim().to_string()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn skopeo(args: &[&str]) -> String {
    run(Command::new(tool("skopeo")).args(args))
}

fn umoci(args: &[&str]) -> String {
    run(Command::new(tool("umoci")).args(args))
}

/// An OCI image layout on disk in which test images are made with umoci.
pub struct Layout {
    dir: tempfile::TempDir,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new()
    }
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        umoci(&["init", "--layout", &dir.path().join("oci").display().to_string()]);
        Layout { dir }
    }

    fn oci(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.oci().display())
    }

    /// A single-platform image with one file layer whose content is `content`;
    /// distinct content gives a distinct digest.
    pub fn make(&self, tag: &str, architecture: &str, content: &str) {
        umoci(&["new", "--image", &self.image(tag)]);
        let file = self.dir.path().join(format!("{tag}.txt"));
        std::fs::write(&file, content).unwrap();
        umoci(&["insert", "--image", &self.image(tag), &file.display().to_string(), "/content.txt"]);
        umoci(&["config", "--image", &self.image(tag), "--os", "linux", "--architecture", architecture]);
    }

    /// Pushes the layout's `tag` to `host/repo:push_tag`; returns its digest.
    pub fn push(&self, tag: &str, host: &str, repo: &str, push_tag: &str) -> String {
        self.push_as(tag, host, repo, push_tag, None)
    }

    /// [`Layout::push`] with `USER:PASSWORD` credentials.
    pub fn push_as(&self, tag: &str, host: &str, repo: &str, push_tag: &str, creds: Option<&str>) -> String {
        let (source, dest) = (format!("oci:{}", self.image(tag)), format!("docker://{host}/{repo}:{push_tag}"));
        let mut args = vec!["copy", "--all", "--dest-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--dest-creds", c]);
        }
        args.extend([source.as_str(), dest.as_str()]);
        skopeo(&args);
        self.digest(tag)
    }

    /// The manifest digest of `tag` in the layout.
    pub fn digest(&self, tag: &str) -> String {
        self.entry(tag)["digest"].as_str().unwrap().to_string()
    }

    fn index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.oci().join("index.json")).unwrap()).unwrap()
    }

    fn entry(&self, tag: &str) -> serde_json::Value {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no {tag} in the layout"))
            .clone()
    }

    /// Writes an OCI image index named `tag` over the images `platforms`
    /// (layout tag, architecture), as multi-platform builds publish.
    pub fn make_index(&self, tag: &str, platforms: &[(&str, &str)]) -> String {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .map(|(t, arch)| {
                let e = self.entry(t);
                serde_json::json!({
                    "mediaType": e["mediaType"], "digest": e["digest"], "size": e["size"],
                    "platform": {"architecture": arch, "os": "linux"},
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        use sha2::Digest as _;
        let hex = hex::encode(sha2::Sha256::digest(&bytes));
        std::fs::write(self.oci().join("blobs/sha256").join(&hex), &bytes).unwrap();
        let mut layout = self.index();
        layout["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        std::fs::write(self.oci().join("index.json"), serde_json::to_vec(&layout).unwrap()).unwrap();
        format!("sha256:{hex}")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
