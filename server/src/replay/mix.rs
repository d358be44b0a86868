//! The spool (what the recorder appends while a room is recorded) and the mix that turns
//! it into an Ogg Opus file, pure apart from CPU.
//!
//! **Spool records**, little endian, appended in arrival order:
//! - `S idx:u16 id_len:u8 id name_len:u8 name`: speaker `idx` is member `id` shown as `name`;
//! - `P idx:u16 t_ms:u32 rtp:u32 len:u16 payload`: one Opus packet of speaker `idx` that
//!   arrived `t_ms` after the recording's start, with its RTP timestamp (48 kHz).
//!
//! A crash can cut the last record short: reading stops there.
//!
//! **Mix**: each speaker's packets are placed on a 20 ms grid by arrival time, with the RTP
//! timestamps keeping consecutive packets of one stream in step (a packet whose RTP time
//! and arrival disagree by more than [`REANCHOR_MS`] starts a new run: a new stream after a
//! reconnect). Each speaker is decoded with their own decoder (Opus PLC for up to
//! [`PLC_FRAMES`] missing frames inside speech, silence beyond), the frames are mixed with
//! the project's mixer (`ruang_media::mixer`, limiter included) and encoded once.

use super::ogg;
use ruang_media::codec::{EncoderConfig, OpusDecoder, OpusEncoder, MAX_PACKET};
use ruang_media::mixer::Mixer;
use ruang_media::FRAME_SAMPLES;
use ruang_proto::{ReplayChapter, ReplaySpan, UserId};
use std::collections::HashMap;

/// One frame on the grid, in ms.
pub const FRAME_MS: u64 = 20;
/// Lost frames inside speech concealed with Opus PLC; longer gaps are silence (DTX pauses).
pub const PLC_FRAMES: u64 = 3;
/// A speaker's packets closer than this (3 s) belong to one stretch of the timeline.
pub const SPAN_GAP_MS: u64 = 3_000;
/// A packet whose place by RTP time is this far from its arrival time starts a new run.
pub const REANCHOR_MS: i64 = 400;
/// The bitrate of the mixed file.
pub const MIX_BITRATE: i32 = 32_000;

/// A speaker in a spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSpeaker {
    pub user: UserId,
    pub name: String,
}

/// One packet in a spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolPacket {
    pub speaker: u16,
    pub t_ms: u32,
    pub rtp: u32,
    pub payload: Vec<u8>,
}

/// A spool read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spool {
    pub speakers: Vec<SpoolSpeaker>,
    pub packets: Vec<SpoolPacket>,
}

fn short(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a speaker record.
pub fn write_speaker(out: &mut Vec<u8>, idx: u16, user: &UserId, name: &str) {
    let id = short(user.as_str(), 255);
    let name = short(name, 255);
    out.push(b'S');
    out.extend_from_slice(&idx.to_le_bytes());
    out.push(id.len() as u8);
    out.extend_from_slice(id.as_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

/// Appends a packet record (payloads longer than `u16::MAX` are not Opus and are skipped).
pub fn write_packet(out: &mut Vec<u8>, idx: u16, t_ms: u32, rtp: u32, payload: &[u8]) {
    let Ok(len) = u16::try_from(payload.len()) else {
        return;
    };
    out.push(b'P');
    out.extend_from_slice(&idx.to_le_bytes());
    out.extend_from_slice(&t_ms.to_le_bytes());
    out.extend_from_slice(&rtp.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads a spool; a record cut short (a crash while writing) ends it.
pub fn read_spool(data: &[u8]) -> Spool {
    let mut spool = Spool::default();
    let mut idx_of: HashMap<u16, u16> = HashMap::new();
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = data.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    loop {
        let start = at;
        let Some(kind) = take(&mut at, 1) else { break };
        let ok = match kind[0] {
            b'S' => (|| {
                let idx = u16::from_le_bytes(take(&mut at, 2)?.try_into().ok()?);
                let n = take(&mut at, 1)?[0] as usize;
                let id = String::from_utf8_lossy(take(&mut at, n)?).into_owned();
                let n = take(&mut at, 1)?[0] as usize;
                let name = String::from_utf8_lossy(take(&mut at, n)?).into_owned();
                idx_of.insert(idx, spool.speakers.len() as u16);
                spool.speakers.push(SpoolSpeaker {
                    user: UserId(id),
                    name,
                });
                Some(())
            })(),
            b'P' => (|| {
                let idx = u16::from_le_bytes(take(&mut at, 2)?.try_into().ok()?);
                let t_ms = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
                let rtp = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
                let len = u16::from_le_bytes(take(&mut at, 2)?.try_into().ok()?) as usize;
                let payload = take(&mut at, len)?.to_vec();
                if let Some(&speaker) = idx_of.get(&idx) {
                    spool.packets.push(SpoolPacket {
                        speaker,
                        t_ms,
                        rtp,
                        payload,
                    });
                }
                Some(())
            })(),
            _ => None,
        };
        if ok.is_none() {
            tracing::warn!(
                at = start,
                "spool ends in a damaged record; the rest is ignored"
            );
            break;
        }
    }
    spool
}

/// A finished mix.
#[derive(Debug, Clone)]
pub struct Mixed {
    pub ogg: Vec<u8>,
    pub duration_ms: u64,
    pub spans: Vec<ReplaySpan>,
    pub chapters: Vec<ReplayChapter>,
}

/// Each speaker's packets as (grid slot, packet index), in slot order, one packet per slot.
fn place(spool: &Spool) -> Vec<Vec<(u64, usize)>> {
    let mut per: Vec<Vec<(u64, usize)>> = vec![Vec::new(); spool.speakers.len()];
    // (anchor slot, anchor rtp, last slot) per speaker
    let mut state: Vec<Option<(i64, u32, i64)>> = vec![None; spool.speakers.len()];
    for (i, p) in spool.packets.iter().enumerate() {
        let s = p.speaker as usize;
        let Some(list) = per.get_mut(s) else { continue };
        let arrival = (p.t_ms as u64 / FRAME_MS) as i64;
        let slot = match state[s] {
            Some((anchor, rtp0, _)) => {
                let by_rtp = anchor + i64::from(p.rtp.wrapping_sub(rtp0) as i32) / 960;
                if (by_rtp - arrival).abs() * FRAME_MS as i64 > REANCHOR_MS {
                    state[s] = Some((arrival, p.rtp, arrival));
                    arrival
                } else {
                    by_rtp
                }
            }
            None => {
                state[s] = Some((arrival, p.rtp, arrival));
                arrival
            }
        };
        if slot < 0 {
            continue;
        }
        list.push((slot as u64, i));
    }
    for list in &mut per {
        list.sort_by_key(|&(slot, _)| slot);
        list.dedup_by_key(|&mut (slot, _)| slot); // a retransmitted duplicate
    }
    per
}

/// Who spoke when: each speaker's packets closer than [`SPAN_GAP_MS`] form one span.
fn spans(spool: &Spool, placed: &[Vec<(u64, usize)>]) -> Vec<ReplaySpan> {
    let mut out = Vec::new();
    for (s, list) in placed.iter().enumerate() {
        let mut current: Option<(u64, u64)> = None;
        for &(slot, _) in list {
            let ms = slot * FRAME_MS;
            current = match current {
                Some((start, end)) if ms <= end + SPAN_GAP_MS => Some((start, ms + FRAME_MS)),
                Some((start, end)) => {
                    out.push((s, start, end));
                    Some((ms, ms + FRAME_MS))
                }
                None => Some((ms, ms + FRAME_MS)),
            };
        }
        if let Some((start, end)) = current {
            out.push((s, start, end));
        }
    }
    out.sort_by_key(|&(s, start, _)| (start, s));
    out.into_iter()
        .map(|(s, start_ms, end_ms)| ReplaySpan {
            user: spool.speakers[s].user.clone(),
            name: spool.speakers[s].name.clone(),
            start_ms,
            end_ms,
        })
        .collect()
}

/// Mixes a spool into an Ogg Opus file with chapters and the speaker timeline.
pub fn mix(spool: &Spool, title: &str) -> Result<Mixed, String> {
    let placed = place(spool);
    let spans = spans(spool, &placed);
    let chapters: Vec<ReplayChapter> = spans
        .iter()
        .map(|s| ReplayChapter {
            start_ms: s.start_ms,
            name: s.name.clone(),
        })
        .collect();
    let total = placed
        .iter()
        .filter_map(|l| l.last().map(|&(slot, _)| slot + 1))
        .max()
        .unwrap_or(0);
    let e = |e: ruang_media::codec::CodecError| e.to_string();
    let mut enc = OpusEncoder::new(EncoderConfig {
        bitrate: MIX_BITRATE,
        fec: false,
        dtx: false,
        packet_loss_perc: 0,
        complexity: 5,
    })
    .map_err(e)?;
    let pre_skip = enc.lookahead().map_err(e)?;
    let mut comments = vec![format!("TITLE={}", title.replace(['\n', '\r'], " "))];
    comments.extend(ogg::chapter_comments(
        &chapters
            .iter()
            .map(|c| (c.start_ms, c.name.clone()))
            .collect::<Vec<_>>(),
    ));
    let serial = rand::random::<u32>();
    let mut w = ogg::OggWriter::new(serial);
    w.headers(
        &ogg::opus_head(pre_skip, 48_000),
        &ogg::opus_tags("ruang", &comments),
    );
    let mut decoders: Vec<OpusDecoder> = (0..placed.len())
        .map(|_| OpusDecoder::new())
        .collect::<Result<_, _>>()
        .map_err(e)?;
    let mut cursor = vec![0usize; placed.len()];
    let mut last: Vec<Option<u64>> = vec![None; placed.len()];
    let mut frames: Vec<Vec<i16>> = vec![vec![0; FRAME_SAMPLES]; placed.len()];
    let mut active: Vec<usize> = Vec::with_capacity(placed.len());
    let mut mixer = Mixer::new(FRAME_SAMPLES);
    let mut mixed = vec![0i16; FRAME_SAMPLES];
    let mut packet = vec![0u8; MAX_PACKET];
    // One more frame than the audio, so the encoder's look-ahead is flushed out.
    let frames_out = if total == 0 { 0 } else { total + 1 };
    for slot in 0..frames_out {
        active.clear();
        for s in 0..placed.len() {
            let list = &placed[s];
            let buf = &mut frames[s];
            if let Some(&(at, i)) = list.get(cursor[s]) {
                if at == slot {
                    cursor[s] += 1;
                    last[s] = Some(slot);
                    // A packet that does not decode (not Opus) is concealed, never fatal.
                    if decoders[s].decode(&spool.packets[i].payload, buf).is_err()
                        && decoders[s].conceal(buf).is_err()
                    {
                        continue;
                    }
                    active.push(s);
                    continue;
                }
            }
            // Missing inside speech (the next packet comes soon): conceal a few frames.
            let next_soon = list
                .get(cursor[s])
                .is_some_and(|&(at, _)| at - slot <= PLC_FRAMES);
            if let Some(l) = last[s] {
                if slot - l <= PLC_FRAMES && next_soon && decoders[s].conceal(buf).is_ok() {
                    active.push(s);
                }
            }
        }
        let refs: Vec<&[i16]> = active.iter().map(|&s| frames[s].as_slice()).collect();
        if refs.is_empty() {
            mixed.fill(0);
        } else {
            mixer.mix_i16(&refs, &mut mixed);
        }
        let n = enc.encode_always(&mixed, &mut packet).map_err(e)?;
        let granule = i64::from(pre_skip) + ((slot + 1) * FRAME_SAMPLES as u64) as i64;
        w.packet(&packet[..n], granule);
    }
    Ok(Mixed {
        ogg: w.finish(),
        duration_ms: total * FRAME_MS,
        spans,
        chapters,
    })
}

/// Decodes an Ogg Opus file made by [`mix`] (or any mono Ogg Opus file) back to 48 kHz PCM,
/// pre-skip removed; with its `OpusTags` comments. For tests and tools.
pub fn decode_ogg_opus(data: &[u8]) -> Result<(Vec<i16>, Vec<String>), String> {
    let packets = ogg::read_packets(data)?;
    let head = packets.first().ok_or("no packets")?;
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return Err("the first packet is not OpusHead".into());
    }
    let pre_skip = u16::from_le_bytes([head[10], head[11]]) as usize;
    let tags = ogg::parse_opus_tags(packets.get(1).ok_or("no OpusTags")?)?;
    let mut dec = OpusDecoder::new().map_err(|e| e.to_string())?;
    let mut pcm = Vec::new();
    let mut frame = vec![0i16; FRAME_SAMPLES];
    for p in &packets[2..] {
        dec.decode(p, &mut frame).map_err(|e| e.to_string())?;
        pcm.extend_from_slice(&frame);
    }
    Ok((pcm.split_off(pre_skip.min(pcm.len())), tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruang_media::codec::Encoded;

    /// Encodes `pcm` (whole frames) into Opus packets, as a client would send them.
    fn packets_of(pcm: &[i16]) -> Vec<Vec<u8>> {
        let mut enc = OpusEncoder::new(EncoderConfig {
            dtx: false,
            ..EncoderConfig::default()
        })
        .unwrap();
        let mut buf = vec![0u8; MAX_PACKET];
        pcm.chunks_exact(FRAME_SAMPLES)
            .map(|f| match enc.encode(f, &mut buf).unwrap() {
                Encoded::Packet(n) => buf[..n].to_vec(),
                Encoded::Silence => vec![0xf8],
            })
            .collect()
    }

    fn tone(freq: f64, frames: usize, amp: f64) -> Vec<i16> {
        (0..frames * FRAME_SAMPLES)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 48_000.0).sin()) as i16)
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64
    }

    fn spool_with(speakers: &[(&str, &str, u32, &[Vec<u8>])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (id, name, _, _)) in speakers.iter().enumerate() {
            write_speaker(&mut out, i as u16, &UserId::from(*id), name);
        }
        for (i, (_, _, start_ms, packets)) in speakers.iter().enumerate() {
            for (k, p) in packets.iter().enumerate() {
                let t = start_ms + 20 * k as u32 + (k as u32 % 3); // a little jitter
                write_packet(&mut out, i as u16, t, 1000 + 960 * k as u32, p);
            }
        }
        out
    }

    #[test]
    fn spool_round_trips_and_a_torn_tail_is_dropped() {
        let mut out = Vec::new();
        write_speaker(&mut out, 0, &UserId::from("u1"), "Maya");
        write_packet(&mut out, 0, 20, 960, &[1, 2, 3]);
        write_packet(&mut out, 7, 40, 1920, &[4]); // unknown speaker: skipped
        write_packet(&mut out, 0, 40, 1920, &[5, 6]);
        let spool = read_spool(&out);
        assert_eq!(spool.speakers[0].name, "Maya");
        assert_eq!(spool.packets.len(), 2);
        assert_eq!(spool.packets[1].payload, [5, 6]);
        let torn = read_spool(&out[..out.len() - 1]);
        assert_eq!(torn.packets.len(), 1);
        assert_eq!(read_spool(b"Zjunk").packets.len(), 0);
    }

    #[test]
    fn mix_places_speakers_by_time_with_chapters() {
        // Maya: 1 s of 440 Hz from 0 s; Budi: 1 s of 660 Hz from 5 s.
        let maya = packets_of(&tone(440.0, 50, 8000.0));
        let budi = packets_of(&tone(660.0, 50, 8000.0));
        let bytes = spool_with(&[("u1", "Maya", 0, &maya), ("u2", "Budi", 5_000, &budi)]);
        let mixed = mix(&read_spool(&bytes), "Room").unwrap();
        assert_eq!(mixed.duration_ms, 6_000);
        assert_eq!(mixed.spans.len(), 2);
        assert_eq!(mixed.spans[0].name, "Maya");
        assert_eq!(
            (mixed.spans[1].start_ms, mixed.spans[1].end_ms),
            (5_000, 6_000)
        );
        let (pcm, tags) = decode_ogg_opus(&mixed.ogg).unwrap();
        assert!(
            tags.contains(&"CHAPTER001=00:00:00.000".to_owned()),
            "{tags:?}"
        );
        assert!(tags.contains(&"CHAPTER002=00:00:05.000".to_owned()));
        assert!(tags.contains(&"CHAPTER002NAME=Budi".to_owned()));
        assert!(tags.contains(&"TITLE=Room".to_owned()));
        let sec = |a: f64, b: f64| &pcm[(a * 48_000.0) as usize..(b * 48_000.0) as usize];
        assert!(energy(sec(0.2, 0.8)) > 1e6, "Maya is heard");
        assert!(energy(sec(2.0, 4.5)) < 1e3, "silence between them");
        assert!(energy(sec(5.2, 5.8)) > 1e6, "Budi is heard at 5 s");
        // Every page checks out and granules only grow.
        let pages = ogg::read_pages(&mixed.ogg).unwrap();
        let granules: Vec<i64> = pages.iter().map(|p| p.granule).filter(|g| *g > 0).collect();
        assert!(granules.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lost_packets_are_concealed_and_garbage_does_not_stop_the_mix() {
        let mut maya = packets_of(&tone(440.0, 50, 8000.0));
        maya[20] = vec![0xff, 0xff, 0xff]; // not a valid Opus frame
        let mut out = Vec::new();
        write_speaker(&mut out, 0, &UserId::from("u1"), "Maya");
        for (k, p) in maya.iter().enumerate() {
            if k == 10 || k == 11 {
                continue; // lost
            }
            write_packet(&mut out, 0, 20 * k as u32, 960 * k as u32, p);
        }
        let mixed = mix(&read_spool(&out), "t").unwrap();
        let (pcm, _) = decode_ogg_opus(&mixed.ogg).unwrap();
        // The lost frames (200–240 ms) are concealed, not silent.
        assert!(energy(&pcm[48 * 200..48 * 240]) > 1e5);
        assert_eq!(mixed.spans.len(), 1);
    }

    #[test]
    fn empty_spool_mixes_to_an_empty_file() {
        let mixed = mix(&Spool::default(), "t").unwrap();
        assert_eq!(mixed.duration_ms, 0);
        let (pcm, _) = decode_ogg_opus(&mixed.ogg).unwrap();
        assert!(pcm.is_empty());
    }
}
