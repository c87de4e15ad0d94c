//! `umlcow`: create, inspect and merge UML COW files (like `uml_mkcow` and `uml_moo`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use umlrun::block::cow::confine::BackingPolicy;
use umlrun::block::{bitmap::Bitmap, cow, merge, BlockError};

const USAGE: &str = "\
usage:
  umlcow create <cow> <backing>      make a sparse COW v3 file over <backing> (like uml_mkcow)
  umlcow info <cow>                  print the COW header and how many sectors it holds
  umlcow merge [-b <backing>] [cow_backing=beside|named|any] <cow> <out>
                                     write COW + backing as a new image <out> (like uml_moo)
  umlcow merge [-b <backing>] [cow_backing=beside|named|any] <cow>
                                     merge in place into the backing file (like uml_moo -d)
  umlcow --help | --version

-b names the backing file to use instead of the one in the COW header.
cow_backing= is umlrun's rule for a backing file only the header names:
beside (the default: a file in the COW file's own directory), named (never:
give -b) or any (whatever the header names, as uml_moo does).";

enum Cmd {
    Help,
    Version,
    Create(PathBuf, PathBuf),
    Info(PathBuf),
    Merge {
        cow: PathBuf,
        backing: Option<PathBuf>,
        out: Option<PathBuf>,
        policy: BackingPolicy,
    },
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    let first = args.first().ok_or("missing command (try --help)")?;
    let rest = &args[1..];
    match first.as_str() {
        "--help" | "-h" | "help" => Ok(Cmd::Help),
        "--version" | "-V" => Ok(Cmd::Version),
        "create" => match rest {
            [c, b] => Ok(Cmd::Create(c.into(), b.into())),
            _ => Err("create takes <cow> <backing>".into()),
        },
        "info" => match rest {
            [c] => Ok(Cmd::Info(c.into())),
            _ => Err("info takes <cow>".into()),
        },
        "merge" => {
            let (mut backing, mut policy, mut rest) = (None, BackingPolicy::default(), rest);
            loop {
                match rest {
                    [flag, b, tail @ ..] if flag == "-b" && backing.is_none() => {
                        backing = Some(PathBuf::from(b));
                        rest = tail;
                    }
                    [flag] if flag == "-b" => return Err("-b needs a backing file".into()),
                    [opt, tail @ ..] if opt.starts_with("cow_backing=") => {
                        let v = &opt["cow_backing=".len()..];
                        policy = BackingPolicy::parse(v).ok_or_else(|| {
                            format!("{opt}: unknown cow_backing (beside, named or any)")
                        })?;
                        rest = tail;
                    }
                    _ => break,
                }
            }
            match rest {
                [c] => Ok(Cmd::Merge {
                    cow: c.into(),
                    backing,
                    out: None,
                    policy,
                }),
                [c, o] => Ok(Cmd::Merge {
                    cow: c.into(),
                    backing,
                    out: Some(o.into()),
                    policy,
                }),
                _ => Err(
                    "merge takes [-b <backing>] [cow_backing=beside|named|any] <cow> [<out>]"
                        .into(),
                ),
            }
        }
        other => Err(format!("unknown command '{other}' (try --help)")),
    }
}

fn info(path: &Path) -> Result<(), BlockError> {
    let file = std::fs::File::open(path).map_err(|source| BlockError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let h = cow::read_header_required(&file, path)?;
    let bitmap: Bitmap = cow::load_bitmap(&file, path, &h)?;
    let mut v = h.version.to_string();
    if h.broken_v3 {
        v.push_str(" (old 64-bit mtime layout)");
    }
    if h.host_order_magic {
        v.push_str(" (host byte order magic)");
    }
    println!("version:        {v}");
    println!("backing file:   {}", h.backing_path.display());
    println!("size:           {} bytes ({} sectors)", h.size, h.sectors());
    println!("mtime:          {}", h.mtime);
    println!("sector size:    {}", h.sectorsize);
    println!("alignment:      {}", h.alignment);
    println!(
        "bitmap offset:  {} ({} bytes)",
        h.bitmap_offset, h.bitmap_len
    );
    println!("data offset:    {}", h.data_offset);
    println!(
        "in COW:         {} of {} sectors",
        bitmap.count(),
        h.sectors()
    );
    // Only a file umlrun would open by default is looked at: the check's
    // answer would describe any file the header names.
    let status = if cow::confine::check(BackingPolicy::Beside, path, &h.backing_path).is_err() {
        "not done: the file is not in the COW file's directory (umlrun's default cow_backing=beside refuses it)".to_string()
    } else {
        match cow::check_backing(path, &h, &h.backing_path) {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    };
    println!("backing check:  {status}");
    Ok(())
}

fn run(cmd: Cmd) -> Result<(), BlockError> {
    match cmd {
        Cmd::Help => println!("{USAGE}"),
        Cmd::Version => println!("umlcow {}", env!("CARGO_PKG_VERSION")),
        Cmd::Create(c, b) => {
            let h = cow::create(&c, &b)?;
            println!(
                "created {} over {} ({} bytes)",
                c.display(),
                h.backing_path.display(),
                h.size
            );
        }
        Cmd::Info(c) => info(&c)?,
        Cmd::Merge {
            cow,
            backing,
            out: Some(out),
            policy,
        } => {
            let st = merge::merge_to(&cow, backing.as_deref(), &out, policy)?;
            println!(
                "wrote {} ({} bytes, {} sectors from {})",
                out.display(),
                st.size,
                st.cow_sectors,
                cow.display()
            );
        }
        Cmd::Merge {
            cow,
            backing,
            out: None,
            policy,
        } => {
            let (st, b) = merge::merge_in_place(&cow, backing.as_deref(), policy)?;
            println!(
                "merged {} sectors of {} into {}; the COW file no longer matches it",
                st.cow_sectors,
                cow.display(),
                b.display()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("umlcow: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        // As umlrun: one line, exit 3, saying how to allow it, decided
        // before the named file is looked at.
        Err(BlockError::BackingNotAllowed {
            cow,
            backing,
            policy,
        }) => {
            eprintln!(
                "umlcow: COW file {} names backing file {}, which cow_backing={policy} does not open (beside: only files in the COW file's directory); to use it, name it: umlcow merge -b {} {} [<out>]",
                cow.display(),
                backing.display(),
                backing.display(),
                cow.display()
            );
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("umlcow: {e}");
            ExitCode::from(1)
        }
    }
}
