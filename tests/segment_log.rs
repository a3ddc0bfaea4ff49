//! The segment log against real files: a write cut short at every byte of
//! the last group is forgotten and the log goes on; a flipped byte is
//! reported as corruption of the right entry, never dropped; derived files
//! deleted or damaged are rebuilt; a second opener is kept out; a full
//! disk (a small tmpfs in a private mount namespace, where that can be
//! made) fails an append cleanly.
//!
//! The byte-by-byte loops run in /dev/shm where there is one: they test
//! what opening makes of the bytes, and a tmpfs makes their syncs free.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provledger::store::NodeWrite;
use provledger::store::log::{Group, Log, LogError, conformance};
use provledger::store::segment::{SegmentLog, SegmentOptions};

/// Small entries, distinct, a few bytes ending in zeros.
fn entry(i: u64) -> Vec<u8> {
    let mut v = format!("entry {i}:").into_bytes();
    v.resize(v.len() + (i % 5) as usize, 0);
    v
}

fn node(level: u32, index: u64) -> NodeWrite {
    let mut hash = [0u8; 32];
    hash[0] = level as u8 + 1;
    hash[1..9].copy_from_slice(&index.to_le_bytes());
    NodeWrite { level, index, hash }
}

/// The nodes entries `from..to` complete: their leaves and, for each odd
/// leaf, its parent.
fn nodes(from: u64, to: u64) -> Vec<NodeWrite> {
    (from..to).flat_map(|i| std::iter::once(node(0, i)).chain((i % 2 == 1).then(|| node(1, i / 2)))).collect()
}

fn checkpoint(size: u64) -> String {
    format!("test\n{size}\nroot\n\n— test sig{size}\n")
}

fn append(log: &SegmentLog, from: u64, to: u64) -> Result<(), LogError> {
    let entries: Vec<Vec<u8>> = (from..to).map(entry).collect();
    let expected = (from > 0).then(|| conformance::head(from));
    let nodes = nodes(from, to);
    let checkpoint = checkpoint(to);
    let head = conformance::head(to);
    log.append(
        expected.as_ref(),
        &Group {
            entries: &entries.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            nodes: &nodes,
            checkpoint: &checkpoint,
            head: &head,
        },
    )
}

/// Asserts that `log` holds exactly entries `0..size`, every one of them,
/// their nodes and the checkpoint of the last group.
fn holds(log: &SegmentLog, size: u64) {
    assert_eq!(log.head().unwrap(), (size > 0).then(|| conformance::head(size)), "the head of {size} entries");
    for i in 0..size {
        assert_eq!(log.entry(i).unwrap(), Some(entry(i)), "entry {i}");
        assert_eq!(log.node(0, i).unwrap(), Some(node(0, i).hash), "leaf {i}");
        if i % 2 == 1 {
            assert_eq!(log.node(1, i / 2).unwrap(), Some(node(1, i / 2).hash), "node 1/{}", i / 2);
        }
    }
    assert_eq!(log.entry(size).unwrap(), None, "no entry past the head");
    assert_eq!(log.node(0, size).unwrap(), None, "no leaf past the head");
    let all: Vec<(u64, Vec<u8>)> = log.range(0, u64::MAX).map(Result::unwrap).collect();
    assert_eq!(all, (0..size).map(|i| (i, entry(i))).collect::<Vec<_>>(), "range over all");
    let cp = log.checkpoint().unwrap();
    assert_eq!(cp, (size > 0).then(|| checkpoint(size)), "the checkpoint");
}

/// A directory for a test: in /dev/shm if there is one.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir()).unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn open(dir: &Path, segment_bytes: u64) -> Result<SegmentLog, LogError> {
    SegmentLog::open_with(dir, &SegmentOptions::new().segment_bytes(segment_bytes))
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn last_segment(dir: &Path) -> PathBuf {
    files(dir, ".log").pop().expect("a segment")
}

/// A copy of the log's files, to put back before each damage.
struct Pristine(Vec<(PathBuf, Vec<u8>)>);

impl Pristine {
    fn take(dir: &Path) -> Pristine {
        Pristine(files(dir, "").into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect())
    }

    fn restore(&self, dir: &Path) {
        for p in files(dir, "") {
            std::fs::remove_file(p).unwrap();
        }
        for (p, b) in &self.0 {
            std::fs::write(p, b).unwrap();
        }
    }
}

/// A log of 8 entries closed cleanly, then a last group of 8..11 whose
/// writer crashed (the state file does not cover it): the log's directory,
/// the last segment, and where the group's bytes start and end in it.
fn with_last_group(root: &Path, segment_bytes: u64) -> (PathBuf, PathBuf, u64, u64) {
    let dir = root.join("log");
    let log = open(&dir, segment_bytes).unwrap();
    append(&log, 0, 5).unwrap();
    append(&log, 5, 8).unwrap();
    drop(log);
    let log = open(&dir, segment_bytes).unwrap();
    let segments = files(&dir, ".log").len();
    let before = std::fs::metadata(last_segment(&dir)).unwrap().len();
    append(&log, 8, 11).unwrap();
    log.crash();
    let seg = last_segment(&dir);
    let before = if files(&dir, ".log").len() > segments { 0 } else { before };
    let after = std::fs::metadata(&seg).unwrap().len();
    (dir, seg, before, after)
}

/// What a flipped byte at `pos` of the last group (8..11, starting at
/// byte `start`, after a segment header if `start` is 0) must be reported
/// as: the entry whose frame it is in, or the group's first entry for the
/// kind and index fields of an entry frame (the frame no longer reads as
/// that entry's), the commit frame and a segment header.
fn expected_index(start: u64, pos: u64) -> u64 {
    let mut at = if start == 0 { 24 } else { start };
    if pos < at {
        return 8;
    }
    for i in 8..11 {
        let len = 14 + 8 + entry(i).len() as u64;
        if pos < at + len {
            let r = pos - at;
            return if r == 8 || (9..17).contains(&r) { 8 } else { i };
        }
        at += len;
    }
    8
}

fn tear_and_garble(segment_bytes: u64) {
    let root = scratch();
    let (dir, seg, before, after) = with_last_group(root.path(), segment_bytes);
    assert!(after - before > 100, "a last group of {} bytes", after - before);
    let pristine = Pristine::take(&dir);
    {
        let log = open(&dir, segment_bytes).unwrap();
        holds(&log, 11);
        log.crash();
    }

    for cut in before..after {
        pristine.restore(&dir);
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        let log = open(&dir, segment_bytes).unwrap_or_else(|e| panic!("cut at byte {cut}: {e}"));
        holds(&log, 8);
        // The torn tail is gone from the file (a segment it started, too).
        let len = std::fs::metadata(&seg).map_or(0, |m| m.len());
        assert_eq!((len, seg.exists()), (before, before > 0), "cut at byte {cut}: the segment after opening");
        // Another group than the torn one, so that nothing of it survives by chance.
        append(&log, 8, 10).unwrap_or_else(|e| panic!("cut at byte {cut}, then an append: {e}"));
        holds(&log, 10);
        log.crash();
        holds(&open(&dir, segment_bytes).unwrap(), 10);
    }

    for from in before..after {
        pristine.restore(&dir);
        let mut b = std::fs::read(&seg).unwrap();
        b[from as usize..].fill(0);
        std::fs::write(&seg, &b).unwrap();
        let log = open(&dir, segment_bytes).unwrap_or_else(|e| panic!("zeros from byte {from}: {e}"));
        holds(&log, 8);
        assert_eq!(std::fs::metadata(&seg).map_or(0, |m| m.len()), before, "zeros from byte {from}: the segment");
        append(&log, 8, 9).unwrap();
        holds(&log, 9);
        log.crash();
        holds(&open(&dir, segment_bytes).unwrap(), 9);
    }

    for pos in before..after {
        pristine.restore(&dir);
        let mut b = std::fs::read(&seg).unwrap();
        b[pos as usize] ^= 0xff;
        std::fs::write(&seg, &b).unwrap();
        let want = expected_index(before, pos);
        match open(&dir, segment_bytes) {
            Err(LogError::Corrupt { index: Some(i), reason }) => {
                assert_eq!(i, want, "byte {pos} flipped: {reason}");
            }
            Err(e) => panic!("byte {pos} flipped: {e}"),
            Ok(log) => panic!("byte {pos} flipped, and the log opened with {:?}", log.head().unwrap()),
        }
        assert_eq!(std::fs::read(&seg).unwrap(), b, "byte {pos} flipped: opening changed the segment");
    }
}

#[test]
fn a_write_cut_short_anywhere_in_the_last_group_is_forgotten_and_a_flipped_byte_is_corruption() {
    tear_and_garble(1 << 20);
}

#[test]
fn the_same_when_the_last_group_started_a_segment() {
    // Every group starts a segment: the last one's header is in the cut.
    tear_and_garble(1);
}

#[test]
fn an_acknowledged_group_is_never_dropped_after_a_clean_close() {
    let root = scratch();
    let dir = root.path().join("log");
    let log = open(&dir, 1 << 20).unwrap();
    append(&log, 0, 8).unwrap();
    drop(log);
    let seg = last_segment(&dir);
    let before = std::fs::metadata(&seg).unwrap().len();
    let log = open(&dir, 1 << 20).unwrap();
    append(&log, 8, 11).unwrap();
    // The clean close records the durable point past the last group.
    drop(log);
    let after = std::fs::metadata(&seg).unwrap().len();
    let pristine = Pristine::take(&dir);
    for cut in (before..after).step_by(7) {
        pristine.restore(&dir);
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        match open(&dir, 1 << 20) {
            Err(LogError::Corrupt { index: Some(i), .. }) => assert!((8..11).contains(&i), "cut at {cut}: entry {i}"),
            other => panic!("cut at {cut} after a clean close: {:?}", other.map(|l| l.head().unwrap())),
        }
    }
    // A flipped byte of an entry before the durable point is not re-read
    // on open, but no read returns the entry or skips it.
    pristine.restore(&dir);
    let mut b = std::fs::read(&seg).unwrap();
    let pos = before as usize + 14 + 8 + entry(8).len() + 20;
    b[pos] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let log = open(&dir, 1 << 20).unwrap();
    assert!(matches!(log.entry(9), Err(LogError::Corrupt { index: Some(9), .. })), "{:?}", log.entry(9));
    let read: Vec<_> = log.range(0, 11).collect();
    assert_eq!(read.len(), 10, "range stops at the damaged entry");
    assert!(matches!(read[9], Err(LogError::Corrupt { index: Some(9), .. })), "{:?}", read[9]);
    drop(log);
    // The commit frame at the durable point is checked on open.
    pristine.restore(&dir);
    let mut b = std::fs::read(&seg).unwrap();
    b[after as usize - 30] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    assert!(matches!(open(&dir, 1 << 20), Err(LogError::Corrupt { index: Some(10), .. })));
}

#[test]
fn derived_files_deleted_or_damaged_are_rebuilt_on_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let seg_bytes = 512;
    let log = open(&dir, seg_bytes).unwrap();
    let mut size = 0;
    for n in [1, 3, 7, 2, 9, 1, 1, 12, 4] {
        append(&log, size, size + n).unwrap();
        size += n;
    }
    holds(&log, size);
    drop(log);
    assert!(files(&dir, ".log").len() >= 4, "groups span several segments: {:?}", files(&dir, ".log"));
    let pristine = Pristine::take(&dir);

    type Damage = fn(&Path);
    let cases: Vec<(&str, Damage)> = vec![
        ("every offset index deleted", |d| files(d, ".idx").into_iter().for_each(|p| std::fs::remove_file(p).unwrap())),
        ("a byte of each offset index flipped", |d| {
            for p in files(d, ".idx") {
                let mut b = std::fs::read(&p).unwrap();
                let at = b.len() / 2;
                b[at] ^= 0x10;
                std::fs::write(&p, b).unwrap();
            }
        }),
        ("the first offset index cut short", |d| {
            let p = &files(d, ".idx")[0];
            let len = std::fs::metadata(p).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len - 16).unwrap();
        }),
        ("the leaf node file deleted", |d| std::fs::remove_file(d.join("nodes-00.bin")).unwrap()),
        ("a byte of a node file flipped", |d| {
            let p = d.join("nodes-01.bin");
            let mut b = std::fs::read(&p).unwrap();
            b[40] ^= 0x01;
            std::fs::write(&p, b).unwrap();
        }),
        ("a node file cut short", |d| {
            let p = d.join("nodes-00.bin");
            std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(36 * 3).unwrap();
        }),
        ("the state file deleted", |d| std::fs::remove_file(d.join("state")).unwrap()),
        ("a byte of the state file flipped", |d| {
            let p = d.join("state");
            let mut b = std::fs::read(&p).unwrap();
            b[20] ^= 0x01;
            std::fs::write(&p, b).unwrap();
        }),
        ("every derived file deleted", |d| {
            for p in files(d, ".idx").into_iter().chain(files(d, ".bin")).chain([d.join("state")]) {
                std::fs::remove_file(p).unwrap();
            }
        }),
    ];
    for (what, damage) in cases {
        pristine.restore(&dir);
        damage(&dir);
        let log = open(&dir, seg_bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        holds(&log, size);
        append(&log, size, size + 2).unwrap_or_else(|e| panic!("{what}, then an append: {e}"));
        holds(&log, size + 2);
        log.crash();
        let log = open(&dir, seg_bytes).unwrap();
        holds(&log, size + 2);
        drop(log);
        // The repair was written down: the derived files are whole again.
        let again = Pristine::take(&dir);
        assert!(
            again.0.iter().any(|(p, _)| p.ends_with("nodes-00.bin"))
                && again.0.iter().any(|(p, _)| p.ends_with("state")),
            "{what}: derived files after the repair: {:?}",
            again.0.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_second_opener_is_kept_out_until_the_first_closes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = open(&dir, 1 << 20).unwrap();
    append(&log, 0, 3).unwrap();
    let err = SegmentLog::open(&dir).err().expect("a second opener is refused");
    assert!(matches!(&err, LogError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(dir.to_str().unwrap()), "the message names the directory: {err}");

    let started = Instant::now();
    let wait = Duration::from_millis(100);
    let err = SegmentLog::open_with(&dir, &SegmentOptions::new().lock_wait(wait)).err().expect("still refused");
    assert!(matches!(err, LogError::Locked { .. }), "{err:?}");
    assert!(started.elapsed() >= wait, "refused after waiting {:?}", started.elapsed());

    // A waiting opener gets the log once the first closes.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            tx.send(()).unwrap();
            SegmentLog::open_with(&dir, &SegmentOptions::new().lock_wait(Duration::from_secs(60)))
        })
    };
    rx.recv().unwrap();
    drop(log);
    let log = waiter.join().unwrap().expect("the waiting opener gets the log");
    holds(&log, 3);
    drop(log);
    holds(&open(&dir, 1 << 20).unwrap(), 3);
}

#[test]
fn a_creation_cut_short_opens_empty_and_foreign_or_newer_directories_are_refused() {
    let root = tempfile::tempdir().unwrap();
    // Killed after the lock file, while writing the format file.
    let dir = root.path().join("cut");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lock"), "").unwrap();
    std::fs::write(dir.join(".format.0123456789abcdef.tmp"), "provledger seg").unwrap();
    let log = open(&dir, 1 << 20).unwrap();
    holds(&log, 0);
    assert!(!dir.join(".format.0123456789abcdef.tmp").exists(), "the temporary file is removed");
    append(&log, 0, 2).unwrap();
    drop(log);
    holds(&open(&dir, 1 << 20).unwrap(), 2);

    // Segments without the format file: not silently a new log.
    std::fs::remove_file(dir.join("format")).unwrap();
    let err = open(&dir, 1 << 20).err().expect("refused");
    assert!(matches!(&err, LogError::Corrupt { index: None, .. }) && err.to_string().contains("format"), "{err}");

    // A newer format.
    std::fs::write(dir.join("format"), "provledger segment log, version 2\n").unwrap();
    let err = open(&dir, 1 << 20).err().expect("refused");
    assert!(err.to_string().contains("upgrade"), "{err}");

    // A first segment whose first group never became durable: empty.
    let dir = root.path().join("first");
    drop(open(&dir, 1 << 20).unwrap());
    std::fs::write(dir.join(format!("seg-{:020}.log", 0)), b"plseglog\x01\0\0").unwrap();
    let log = open(&dir, 1 << 20).unwrap();
    holds(&log, 0);
    append(&log, 0, 1).unwrap();
    holds(&log, 1);
}

#[test]
fn readers_see_whole_groups_while_appends_run() {
    let root = tempfile::tempdir().unwrap();
    let log = Arc::new(open(&root.path().join("log"), 2048).unwrap());
    append(&log, 0, 1).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, done) = (log.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let head = log.head().unwrap().unwrap();
                    let n = head.count;
                    assert!(n >= seen, "the head went back from {seen} to {n}");
                    seen = n;
                    assert_eq!(log.entry(n - 1).unwrap(), Some(entry(n - 1)), "the head's last entry");
                    assert_eq!(log.node(0, n - 1).unwrap(), Some(node(0, n - 1).hash), "the head's last leaf");
                    let got = log.range(n.saturating_sub(5), n).map(|r| r.unwrap().0).collect::<Vec<_>>();
                    assert_eq!(got, (n.saturating_sub(5)..n).collect::<Vec<_>>());
                }
                seen
            })
        })
        .collect();
    let mut size = 1;
    for k in 0..150 {
        let n = 1 + k % 4;
        append(&log, size, size + n).unwrap();
        size += n;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    holds(&log, size);
}

/// Mounts a 1 MiB tmpfs in a private mount namespace and runs
/// [`full_disk`] in it, in this test binary run again.
const SCRIPT: &str = r#"
M=$(mktemp -d) || exit 97
mount -t tmpfs -o size=1m tmpfs "$M" || exit 97
SEGLOG_TMPFS="$M" "$1" --exact a_full_disk_fails_an_append_cleanly --nocapture --test-threads=1; rc=$?
umount "$M"; rmdir "$M"
exit $rc
"#;

#[test]
fn a_full_disk_fails_an_append_cleanly() {
    if let Ok(mount) = std::env::var("SEGLOG_TMPFS") {
        full_disk(Path::new(&mount));
        println!("FULL DISK CHECKED");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out =
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh"]).arg(exe).output();
    match out {
        Err(e) => println!("not simulated: unshare is not available ({e})"),
        Ok(o) if o.status.code() == Some(97) || String::from_utf8_lossy(&o.stderr).contains("not permitted") => {
            println!("not simulated: mounting a tmpfs in a private namespace is not permitted here");
        }
        Ok(o) => {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            println!("{text}");
            assert!(o.status.success() && text.contains("FULL DISK CHECKED"), "in the namespace:\n{text}");
        }
    }
}

/// The segment, offset index and node files that hold anything, and their sizes.
fn file_sizes(dir: &Path) -> std::collections::BTreeMap<PathBuf, u64> {
    [".log", ".idx", ".bin"]
        .into_iter()
        .flat_map(|s| files(dir, s))
        .map(|p| (p.clone(), std::fs::metadata(&p).unwrap().len()))
        .filter(|&(_, len)| len > 0)
        .collect()
}

fn full_disk(mount: &Path) {
    use std::io::Write as _;
    let dir = mount.join("log");
    let seg_bytes = 16 << 10;
    let log = open(&dir, seg_bytes).unwrap();
    let mut size = 0;
    for _ in 0..20 {
        append(&log, size, size + 3).unwrap();
        size += 3;
    }
    // Fill the file system, to the last byte it gives.
    let mut fill = std::fs::File::create(mount.join("fill")).unwrap();
    for chunk in [64 << 10, 4096, 512, 1] {
        let zeros = vec![0u8; chunk];
        while fill.write_all(&zeros).is_ok() {}
    }
    drop(fill);
    // Appends now fail, and each failure leaves the head of the last one
    // acknowledged. Then a page is freed, and appends go on until the next
    // file that needs one (a segment, an offset index, a node file, the
    // state at a roll) fails the next.
    let fill = std::fs::OpenOptions::new().write(true).open(mount.join("fill")).unwrap();
    let mut failures = 0;
    let mut full_files = std::collections::BTreeSet::new();
    for round in 0..60u64 {
        for k in 0..200u64 {
            let n = [1, 1, 4, 1, 9][((round + k) % 5) as usize];
            let sizes = file_sizes(&dir);
            match append(&log, size, size + n) {
                Ok(()) => size += n,
                Err(LogError::DiskFull { path }) => {
                    failures += 1;
                    assert!(path.starts_with(&dir), "the full file is named: {}", path.display());
                    let name = path.file_name().unwrap().to_string_lossy();
                    full_files.insert(name.split('-').next().unwrap().to_owned());
                    assert_eq!(log.head().unwrap(), Some(conformance::head(size)), "the head after a failed append");
                    assert_eq!(file_sizes(&dir), sizes, "the files after an append failed writing {name}");
                    assert!(
                        matches!(append(&log, size, size + n), Err(LogError::DiskFull { .. })),
                        "a retry fails too"
                    );
                    break;
                }
                Err(e) => panic!("append on a full disk: {e}"),
            }
        }
        let len = fill.metadata().unwrap().len();
        fill.set_len(len.saturating_sub(4096)).unwrap();
    }
    println!("{failures} failures, writing {full_files:?}");
    assert!(failures >= 50, "only {failures} of 60 rounds met a full disk");
    assert!(
        full_files.contains("seg") && full_files.contains("nodes"),
        "both the segment write and a derived write met the full disk: {full_files:?}"
    );
    holds(&log, size);
    drop(log);
    // Reopened, still full: everything acknowledged reads back.
    let log = open(&dir, seg_bytes).unwrap();
    holds(&log, size);
    // Space again: appends go on.
    std::fs::remove_file(mount.join("fill")).unwrap();
    for _ in 0..10 {
        append(&log, size, size + 2).unwrap();
        size += 2;
    }
    holds(&log, size);
    log.crash();
    holds(&open(&dir, seg_bytes).unwrap(), size);
}
