//! `ruang`: the one binary an operator and a tester need.

mod account;
mod bench;
mod bot;
mod chat;
mod load;
mod replay;
mod safety;
mod serve;
mod social;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ruang",
    version,
    about = "Ruang live audio rooms: server, client and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and who is asking.
#[derive(clap::Args, Clone)]
pub struct Remote {
    /// Server base URL.
    #[arg(
        long,
        env = "RUANG_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// Session token (from `ruang signup`).
    #[arg(long, env = "RUANG_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<serve::ServeArgs>),
    /// A server with a demo room, for a first look.
    Demo(serve::DemoArgs),
    /// Create an account with an invite code; prints the session token.
    Signup {
        #[command(flatten)]
        remote: Remote,
        /// Invite code or invite link.
        #[arg(long)]
        invite: String,
        #[arg(long)]
        handle: String,
        /// Display name (defaults to the handle).
        #[arg(long)]
        name: Option<String>,
    },
    /// Your unused invite codes, one per line.
    Invites {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: Option<account::InviteAction>,
        /// Print share links instead of codes.
        #[arg(long)]
        links: bool,
    },
    /// Rooms.
    Room {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: account::RoomAction,
    },
    /// Your hallway: one live room per line, id first.
    Rooms {
        #[command(flatten)]
        remote: Remote,
    },
    /// Your profile, or someone else's; `profile set` changes yours.
    #[command(args_conflicts_with_subcommands = true)]
    Profile {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: Option<social::ProfileAction>,
        handle: Option<String>,
    },
    /// Scheduled rooms: create, show, edit, cancel, notify, start.
    Event {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: social::EventAction,
    },
    /// Upcoming scheduled rooms, one per line: id, local start, status, title.
    Events {
        #[command(flatten)]
        remote: Remote,
    },
    /// Search people, live rooms and scheduled rooms.
    Search {
        #[command(flatten)]
        remote: Remote,
        query: String,
    },
    /// Your notifications, newest first (`*` marks unread).
    Notifications {
        #[command(flatten)]
        remote: Remote,
        /// Mark them read.
        #[arg(long)]
        read: bool,
    },
    /// Follow someone.
    Follow {
        #[command(flatten)]
        remote: Remote,
        handle: String,
    },
    /// Unfollow someone.
    Unfollow {
        #[command(flatten)]
        remote: Remote,
        handle: String,
    },
    /// Block someone: they cannot join rooms you moderate, follow you or reach you.
    Block {
        #[command(flatten)]
        remote: Remote,
        handle: String,
    },
    /// Unblock someone.
    Unblock {
        #[command(flatten)]
        remote: Remote,
        handle: String,
    },
    /// The people you blocked, one handle per line.
    Blocks {
        #[command(flatten)]
        remote: Remote,
    },
    /// Report a member, a room or a chat message to the admins; prints the report id.
    Report {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        target: safety::ReportTarget,
        /// spam, harassment, hate, sexual, violence, impersonation or other.
        #[arg(long, global = true, default_value = "other")]
        reason: String,
        /// What happened (up to 1000 characters).
        #[arg(long, global = true, default_value = "")]
        details: String,
    },
    /// Admins: reports, bans, invite revocation, the audit log.
    Admin {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: safety::AdminAction,
    },
    /// Room members with a virtual audio device: stream a WAV file, record a room.
    Bot {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: bot::BotAction,
    },
    /// Benchmarks: `bench latency` (mouth-to-ear, join to first audio, loss and jitter).
    Bench {
        #[command(subcommand)]
        action: bench::BenchAction,
    },
    /// Capacity test: N real listeners (str0m peers on one loop) and S Opus speakers in one
    /// room; reports loss, forwarding delay, join time and the server's CPU and memory.
    Load(load::LoadArgs),
    /// Post to a room's chat, or read it with --tail.
    Chat {
        #[command(flatten)]
        remote: Remote,
        room: String,
        /// The message (plain text, 1-500 characters).
        text: Option<String>,
        /// Print the latest messages, then new ones (and reaction bursts) until Ctrl-C.
        #[arg(long)]
        tail: bool,
        /// With --tail: stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Send a reaction: 👏 ❤️ 😂 🔥 💯 🙌 ✋ +1 (or by name: clap, heart, laugh, fire,
    /// hundred, raised_hands, hand, plus_one).
    React {
        #[command(flatten)]
        remote: Remote,
        room: String,
        emoji: String,
        /// Aim it at someone on stage (handle).
        #[arg(long)]
        to: Option<String>,
        /// Send it this many times (the server drops what is over its budget).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Download a recorded room's replay once it has ended (`--out FILE.ogg`), or delete it.
    #[command(args_conflicts_with_subcommands = true)]
    Replay {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        action: Option<replay::ReplayAction>,
        /// Room id or link.
        room: Option<String>,
        /// Where to write the Ogg Opus file.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Clip the last 30 s of a live room; prints the clip's link.
    Clip {
        #[command(flatten)]
        remote: Remote,
        /// Room id or link.
        room: String,
    },
    /// Revoke this session token (or all of yours with --all).
    Logout {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Client commands carry WebRTC media on the runtime: its threads get the network
    // priority (as the app's core runtime does). `ruang serve` keeps HTTP at normal priority;
    // its SFU threads raise themselves.
    let client = !matches!(cli.command, Command::Serve(_));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if client {
                ruang_media::rt::raise_network_thread();
            }
        })
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ruang: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(*args).await,
            Command::Demo(args) => serve::demo(args).await,
            Command::Signup {
                remote,
                invite,
                handle,
                name,
            } => account::signup(&remote, &invite, &handle, name.as_deref()).await,
            Command::Invites {
                remote,
                action,
                links,
            } => account::invites(&remote, action, links).await,
            Command::Room { remote, action } => account::room(&remote, action).await,
            Command::Rooms { remote } => account::rooms(&remote).await,
            Command::Profile {
                remote,
                action: Some(action),
                ..
            } => social::profile_action(&remote, action).await,
            Command::Profile { remote, handle, .. } => account::profile(&remote, handle).await,
            Command::Event { remote, action } => social::event(&remote, action).await,
            Command::Events { remote } => social::events(&remote).await,
            Command::Search { remote, query } => social::search(&remote, &query).await,
            Command::Notifications { remote, read } => social::notifications(&remote, read).await,
            Command::Follow { remote, handle } => account::follow(&remote, &handle, true).await,
            Command::Unfollow { remote, handle } => account::follow(&remote, &handle, false).await,
            Command::Chat {
                remote,
                room,
                text,
                tail,
                seconds,
            } => chat::chat(&remote, &room, text, tail, seconds).await,
            Command::React {
                remote,
                room,
                emoji,
                to,
                count,
            } => chat::react(&remote, &room, &emoji, to, count).await,
            Command::Logout { remote, all } => account::logout(&remote, all).await,
            Command::Replay {
                remote,
                action,
                room,
                out,
            } => replay::replay(&remote, action, room, out).await,
            Command::Clip { remote, room } => replay::clip(&remote, &room).await,
            Command::Block { remote, handle } => safety::block(&remote, &handle, true).await,
            Command::Unblock { remote, handle } => safety::block(&remote, &handle, false).await,
            Command::Blocks { remote } => safety::blocks(&remote).await,
            Command::Report {
                remote,
                target,
                reason,
                details,
            } => safety::report(&remote, target, &reason, details).await,
            Command::Admin { remote, action } => safety::admin(&remote, action).await,
            Command::Bot { remote, action } => bot::bot(&remote, action).await,
            Command::Bench { action } => bench::bench(action).await,
            Command::Load(args) => load::load(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line on stderr: the outermost message and its causes.
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("ruang: {}", msg.join(": "));
            ExitCode::FAILURE
        }
    }
}
