//! `trainer download`: fetches an official CIFAR archive, checks its MD5 and unpacks it.
//!
//! The archive is streamed to a hidden file beside the destination, unpacked into a hidden
//! folder there, and only a complete, verified folder is renamed into place, so an interrupted
//! or corrupt download never looks like a dataset. Leftovers of an interrupted run have fixed
//! names, so the next run replaces them.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::GzDecoder;
use md5::Md5;

use crate::data::{CIFAR10, CIFAR100, CifarFormat};
use crate::http::{self, Cut, Progress, Timeouts};

struct Source {
    url: &'static str,
    md5: &'static str,
    format: &'static CifarFormat,
}

fn source(which: &str) -> Result<Source> {
    Ok(match which {
        "cifar10" => Source {
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            format: &CIFAR10,
        },
        "cifar100" => Source {
            url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
            md5: "03b5dce01913d631647c71ecec9e9cb8",
            format: &CIFAR100,
        },
        other => bail!("unknown dataset {other:?}: expected cifar10 or cifar100"),
    })
}

/// Downloads `which` (cifar10 or cifar100) into `to`, returning the dataset folder.
/// `url` and `md5` replace the official ones (for mirrors and tests).
pub fn run(which: &str, to: &Path, url: Option<&str>, md5: Option<&str>) -> Result<PathBuf> {
    let src = source(which)?;
    let url = url.unwrap_or(src.url);
    let md5 = md5.unwrap_or(src.md5).to_ascii_lowercase();
    let folder = src.format.folder;
    let dest = to.join(folder);
    if dest.exists() {
        return match incomplete(src.format, &dest) {
            None => {
                eprintln!("{} is already complete; nothing to do", dest.display());
                Ok(dest)
            }
            Some(problem) => bail!(
                "{} exists but is incomplete ({problem}); remove it and run again",
                dest.display()
            ),
        };
    }
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let temp = Leftovers::new(to, which)?;
    let sum = fetch(url, &temp.archive)?;
    if sum != md5 {
        bail!(
            "MD5 mismatch for {url}: expected {md5}, got {sum} (the download is corrupt, or \
             the server sends a different file); nothing was kept"
        );
    }
    unpack(&temp.archive, &temp.unpacked)?;
    let inner = temp.unpacked.join(folder);
    if let Some(problem) = incomplete(src.format, &inner) {
        bail!("the archive from {url} does not hold a complete {folder}/ folder: {problem}");
    }
    fs::rename(&inner, &dest)
        .with_context(|| format!("moving {} to {}", inner.display(), dest.display()))?;
    eprintln!("{} is ready in {}", src.format.name, dest.display());
    Ok(dest)
}

/// Why `dir` is not a usable copy of the dataset, if it is not.
fn incomplete(format: &CifarFormat, dir: &Path) -> Option<String> {
    let record = format.record_len() as u64;
    for file in format.train_files.iter().chain([&format.test_file]) {
        let len = match fs::metadata(dir.join(file)) {
            Ok(m) if m.is_file() => m.len(),
            _ => return Some(format!("{file} is missing")),
        };
        if len == 0 || len % record != 0 {
            return Some(format!(
                "{file} has {len} bytes, not a whole number of {record}-byte records"
            ));
        }
    }
    None
}

/// The temporary archive and unpacking folder; both are deleted when this is dropped,
/// whether the download succeeded or not.
struct Leftovers {
    archive: PathBuf,
    unpacked: PathBuf,
}

impl Leftovers {
    fn new(to: &Path, which: &str) -> Result<Self> {
        let temp = Self {
            archive: to.join(format!(".{which}-download.tar.gz.part")),
            unpacked: to.join(format!(".{which}-unpacking")),
        };
        temp.remove();
        if temp.unpacked.exists() {
            bail!(
                "cannot remove the leftover {}; remove it by hand",
                temp.unpacked.display()
            );
        }
        Ok(temp)
    }

    fn remove(&self) {
        // Best effort: they may not exist, and an error here must not hide the real one.
        let _ = fs::remove_file(&self.archive);
        let _ = fs::remove_dir_all(&self.unpacked);
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Streams `url` into `path`, showing progress; returns the body's MD5 as lowercase hex.
fn fetch(url: &str, path: &Path) -> Result<String> {
    let timeouts = Timeouts {
        connect: http::CONNECT,
        // A stalled server should fail the download, not hang it forever.
        read: Duration::from_secs(60),
    };
    let response = http::agent(timeouts, 5)
        .get(url)
        .call()
        .map_err(|e| anyhow!("{url}: {}", http::describe(&e, url, timeouts)))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    let total = http::content_length(&response);
    let mut body = response.into_body().into_reader();
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut progress = Progress::new(url, total);
    let md5 = match http::save::<Md5>(&mut body, &mut file, total, None, &mut progress) {
        Ok(md5) => md5,
        Err(Cut::Read(e)) => {
            return Err(e)
                .with_context(|| format!("downloading {url} after {} bytes", progress.got()));
        }
        Err(Cut::Write(e)) => return Err(e).with_context(|| format!("writing {}", path.display())),
        Err(Cut::Short { total }) => bail!(
            "{url}: the connection closed after {} of {total} bytes",
            progress.got()
        ),
        Err(Cut::TooLong) => unreachable!("no limit"),
    };
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(md5)
}

/// Unpacks a .tar.gz into `dir` (tar refuses entries that would land outside it).
fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    tar::Archive::new(GzDecoder::new(BufReader::new(file)))
        .unpack(dir)
        .context("unpacking the downloaded archive (is it a .tar.gz?)")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Write};
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use md5::Digest;

    use super::*;

    /// A .tar.gz holding `cifar-10-batches-bin/` with two records per batch file, or only the
    /// first train file when `complete` is false.
    fn fake_archive(complete: bool) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let files = CIFAR10.train_files.iter().chain([&CIFAR10.test_file]);
        for (i, file) in files.enumerate().take(if complete { 6 } else { 1 }) {
            let mut body = vec![i as u8; 2 * 3073];
            body[3073] = 9;
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(
                &mut header,
                format!("cifar-10-batches-bin/{file}"),
                &body[..],
            )
            .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn md5_hex(bytes: &[u8]) -> String {
        format!("{:x}", Md5::digest(bytes))
    }

    /// Answers one request per body, in order, then stops listening.
    fn serve(bodies: Vec<Vec<u8>>) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/cifar-10-binary.tar.gz",
            listener.local_addr().unwrap()
        );
        let handle = std::thread::spawn(move || {
            for body in bodies {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(&body).unwrap();
            }
        });
        (url, handle)
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn downloads_verifies_and_unpacks_without_leftovers() {
        let (good, partial) = (fake_archive(true), fake_archive(false));
        let (sum, partial_sum) = (md5_hex(&good), md5_hex(&partial));
        let (url, server) = serve(vec![good.clone(), good, partial]);
        let tmp = tempfile::tempdir().unwrap();

        let to = tmp.path().join("data");
        let dir = run("cifar10", &to, Some(&url), Some(&sum.to_uppercase())).unwrap();
        assert_eq!(dir, to.join("cifar-10-batches-bin"));
        assert_eq!(entries(&to), ["cifar-10-batches-bin"]);
        assert_eq!(entries(&dir).len(), 6);
        let loaded =
            crate::data::load(crate::data::DatasetKind::Cifar10, &to, 32, 0, None).unwrap();
        assert_eq!((loaded.train.len(), loaded.test.len()), (10, 2));
        // Complete already: no request is made (the server would answer with the wrong body).
        assert_eq!(run("cifar10", &to, Some(&url), Some(&sum)).unwrap(), dir);

        let wrong = tmp.path().join("wrong");
        let e = format!(
            "{:#}",
            run("cifar10", &wrong, Some(&url), Some("0123")).unwrap_err()
        );
        assert!(e.contains("expected 0123") && e.contains(&sum), "{e}");
        assert!(entries(&wrong).is_empty(), "{:?}", entries(&wrong));

        let short = tmp.path().join("short");
        let e = format!(
            "{:#}",
            run("cifar10", &short, Some(&url), Some(&partial_sum)).unwrap_err()
        );
        assert!(e.contains("data_batch_2.bin is missing"), "{e}");
        assert!(entries(&short).is_empty(), "{:?}", entries(&short));
        server.join().unwrap();
    }

    #[test]
    fn refuses_unknown_names_unreachable_servers_and_incomplete_folders() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            run("mnist", tmp.path(), None, None)
                .unwrap_err()
                .to_string()
                .contains("cifar10")
        );
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x.tar.gz");
        assert!(run("cifar100", tmp.path(), Some(&url), None).is_err());
        assert!(entries(tmp.path()).is_empty());
        fs::create_dir(tmp.path().join("cifar-100-binary")).unwrap();
        let e = run("cifar100", tmp.path(), Some(&url), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("incomplete (train.bin is missing)"), "{e}");
    }
}
