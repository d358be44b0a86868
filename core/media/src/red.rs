//! RFC 2198 redundant audio (RED) for Opus, as browsers negotiate it (`red/48000/2`, fmtp
//! `111/111`): each packet carries the current frame (the *primary*) and copies of up to
//! [`MAX_REDUNDANCY`] earlier ones, so a receiver rebuilds a lost frame from a later packet
//! at full quality instead of concealing it.
//!
//! Payload layout: one 4-byte header per redundant block (F=1, 7-bit PT, 14-bit timestamp
//! offset back from the primary, 10-bit length), oldest first, then the 1-byte primary header
//! (F=0, 7-bit PT), then the block payloads in the same order, the primary last.
//!
//! Neither side allocates: [`RedEncoder`] keeps the last frames in fixed arrays and writes
//! into the caller's buffer, [`parse`] returns slices of the packet in a fixed-size array.
//! Senders (ours, str0m, libwebrtc) put consecutive earlier packets in the redundancy, so the
//! last redundant block is the packet one sequence number back, the one before it two back,
//! and so on ([`RedPacket::redundant_with_seq`]).

/// Most earlier frames one packet carries.
pub const MAX_REDUNDANCY: usize = 2;
/// Most redundant blocks [`parse`] accepts (RFC 2198 sets no limit; libwebrtc caps at 32).
pub const MAX_PARSED_BLOCKS: usize = 8;
/// Largest timestamp offset a redundant block header can carry (14 bits, 341 ms at 48 kHz).
pub const MAX_TS_OFFSET: u32 = 0x3fff;
/// Largest redundant block (10-bit length field).
pub const MAX_BLOCK_LEN: usize = 0x3ff;
/// Room a RED payload needs on top of the frames it carries.
pub const RED_OVERHEAD: usize = 4 * MAX_REDUNDANCY + 1;

const F_BIT: u8 = 0x80;

/// Why a RED payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("RED payload ends inside a block header")]
    TruncatedHeader,
    #[error("RED block lengths run past the end of the payload")]
    TruncatedBlock,
    #[error("more than {MAX_PARSED_BLOCKS} redundant blocks")]
    TooManyBlocks,
}

/// One block of a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedBlock<'a> {
    pub pt: u8,
    /// How far (RTP ticks) before the primary's timestamp this block's frame starts; 0 for
    /// the primary.
    pub ts_offset: u32,
    pub payload: &'a [u8],
}

/// A parsed RED payload: redundant blocks (oldest first) and the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedPacket<'a> {
    redundant: [RedBlock<'a>; MAX_PARSED_BLOCKS],
    count: usize,
    pub primary: RedBlock<'a>,
}

impl<'a> RedPacket<'a> {
    /// The redundant blocks, oldest first.
    pub fn redundant(&self) -> &[RedBlock<'a>] {
        &self.redundant[..self.count]
    }

    /// The redundant blocks that can be placed: same payload type as the primary, offsets
    /// strictly decreasing towards the primary and not zero. Each comes with its sequence
    /// number and timestamp (the last block is `seq - 1`, the one before `seq - 2`, …),
    /// newest first. Blocks that break the order are skipped, with everything older.
    pub fn redundant_with_seq(
        &self,
        seq: u16,
        ts: u32,
    ) -> impl Iterator<Item = (u16, u32, &'a [u8])> + '_ {
        let primary_pt = self.primary.pt;
        let mut prev_offset = 0u32;
        let mut ok = true;
        self.redundant()
            .iter()
            .rev()
            .enumerate()
            .filter_map(move |(i, b)| {
                ok = ok && b.ts_offset > prev_offset && b.pt == primary_pt;
                prev_offset = b.ts_offset;
                if !ok || b.payload.is_empty() {
                    return None;
                }
                let back = i as u16 + 1;
                Some((
                    seq.wrapping_sub(back),
                    ts.wrapping_sub(b.ts_offset),
                    b.payload,
                ))
            })
    }
}

/// Parses a RED payload. Never panics; anything malformed is an error.
pub fn parse(data: &[u8]) -> Result<RedPacket<'_>, RedError> {
    let mut redundant = [RedBlock::default(); MAX_PARSED_BLOCKS];
    let mut lens = [0usize; MAX_PARSED_BLOCKS];
    let mut count = 0;
    let mut i = 0;
    let primary_pt = loop {
        let first = *data.get(i).ok_or(RedError::TruncatedHeader)?;
        if first & F_BIT == 0 {
            i += 1;
            break first & 0x7f;
        }
        if count == MAX_PARSED_BLOCKS {
            return Err(RedError::TooManyBlocks);
        }
        let h = data.get(i..i + 4).ok_or(RedError::TruncatedHeader)?;
        redundant[count].pt = h[0] & 0x7f;
        redundant[count].ts_offset = (u32::from(h[1]) << 6) | (u32::from(h[2]) >> 2);
        lens[count] = ((usize::from(h[2]) & 0x03) << 8) | usize::from(h[3]);
        count += 1;
        i += 4;
    };
    for (b, &len) in redundant[..count].iter_mut().zip(&lens) {
        b.payload = data.get(i..i + len).ok_or(RedError::TruncatedBlock)?;
        i += len;
    }
    Ok(RedPacket {
        redundant,
        count,
        primary: RedBlock {
            pt: primary_pt,
            ts_offset: 0,
            payload: &data[i..],
        },
    })
}

/// How many earlier frames to send at a loss (percent, the smoothed loss the far end
/// reports): none on a clean path, one at a few percent, two at heavy loss.
pub fn redundancy_for_loss(loss_percent: f32) -> usize {
    if loss_percent < 2.0 {
        0
    } else if loss_percent < 8.0 {
        1
    } else {
        2
    }
}

#[derive(Debug, Clone, Copy)]
struct Past {
    seq: u16,
    ts: u32,
    len: usize,
    data: [u8; MAX_BLOCK_LEN],
}

/// Builds RED payloads from a stream of Opus frames, remembering the last
/// [`MAX_REDUNDANCY`] (fixed storage, no allocation).
#[derive(Debug, Clone)]
pub struct RedEncoder {
    pt: u8,
    /// Ring of past frames; `next` is where the next one goes.
    past: [Option<Past>; MAX_REDUNDANCY],
    next: usize,
}

impl RedEncoder {
    /// `pt`: the payload type of the frames (Opus, the fmtp's `111/111`).
    pub fn new(pt: u8) -> Self {
        RedEncoder {
            pt: pt & 0x7f,
            past: [None; MAX_REDUNDANCY],
            next: 0,
        }
    }

    /// Forgets the history (a new stream).
    pub fn reset(&mut self) {
        self.past = [None; MAX_REDUNDANCY];
    }

    /// Writes a RED payload for the frame `primary` (RTP `seq`, `ts`) carrying up to
    /// `redundancy` (≤ [`MAX_REDUNDANCY`]) earlier frames into `out`, and remembers the frame.
    /// Only the frames immediately before it (`seq - 1`, `seq - 2`, … without a gap) whose
    /// offset and length fit the header go in. Returns the payload length, or `None` if
    /// `out` is too small (the frame is still remembered).
    pub fn encode(
        &mut self,
        seq: u16,
        ts: u32,
        primary: &[u8],
        redundancy: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        // Which earlier frames go in (newest first: back = 1, 2, …).
        let mut chosen = [usize::MAX; MAX_REDUNDANCY];
        let mut n = 0;
        for back in 1..=redundancy.min(MAX_REDUNDANCY) {
            let want = seq.wrapping_sub(back as u16);
            let found = self.past.iter().position(|p| {
                p.is_some_and(|p| {
                    let off = ts.wrapping_sub(p.ts);
                    p.seq == want && off > 0 && off <= MAX_TS_OFFSET && p.len <= MAX_BLOCK_LEN
                })
            });
            match found {
                Some(i) => {
                    chosen[n] = i;
                    n += 1;
                }
                None => break,
            }
        }
        let total =
            4 * n + 1 + primary.len() + chosen[..n].iter().map(|&i| self.len(i)).sum::<usize>();
        let written = if total <= out.len() {
            let mut w = 0;
            for &i in chosen[..n].iter().rev() {
                let p = self.past[i].as_ref().expect("chosen");
                let off = ts.wrapping_sub(p.ts);
                let len = p.len as u32;
                out[w] = F_BIT | self.pt;
                out[w + 1] = (off >> 6) as u8;
                out[w + 2] = (((off & 0x3f) << 2) | (len >> 8)) as u8;
                out[w + 3] = len as u8;
                w += 4;
            }
            out[w] = self.pt;
            w += 1;
            for &i in chosen[..n].iter().rev() {
                let p = self.past[i].as_ref().expect("chosen");
                out[w..w + p.len].copy_from_slice(&p.data[..p.len]);
                w += p.len;
            }
            out[w..w + primary.len()].copy_from_slice(primary);
            Some(w + primary.len())
        } else {
            None
        };
        self.remember(seq, ts, primary);
        written
    }

    /// Remembers a frame sent without RED (so redundancy can start with the next packet).
    pub fn remember(&mut self, seq: u16, ts: u32, frame: &[u8]) {
        let slot = &mut self.past[self.next];
        self.next = (self.next + 1) % MAX_REDUNDANCY;
        if frame.len() > MAX_BLOCK_LEN {
            *slot = None;
            return;
        }
        let p = slot.get_or_insert(Past {
            seq,
            ts,
            len: 0,
            data: [0; MAX_BLOCK_LEN],
        });
        p.seq = seq;
        p.ts = ts;
        p.len = frame.len();
        p.data[..frame.len()].copy_from_slice(frame);
    }

    fn len(&self, i: usize) -> usize {
        self.past[i].as_ref().map_or(0, |p| p.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::alloc_count;
    use proptest::prelude::*;

    fn frame(seq: u16) -> Vec<u8> {
        (0..(20 + seq as usize % 50))
            .map(|i| (seq as usize * 7 + i) as u8)
            .collect()
    }

    #[test]
    fn encode_then_parse_gives_back_the_frames_with_their_seq_and_ts() {
        let mut enc = RedEncoder::new(111);
        let mut out = [0u8; 1500];
        // First packet: nothing to repeat yet.
        let n = enc.encode(100, 96_000, &frame(100), 2, &mut out).unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!(p.redundant().len(), 0);
        assert_eq!(p.primary.pt, 111);
        assert_eq!(p.primary.payload, &frame(100)[..]);
        // Second: one earlier frame.
        let n = enc.encode(101, 96_960, &frame(101), 2, &mut out).unwrap();
        let p = parse(&out[..n]).unwrap();
        let got: Vec<_> = p.redundant_with_seq(101, 96_960).collect();
        assert_eq!(got, vec![(100, 96_000, &frame(100)[..])]);
        // Third: two, newest first from the iterator, oldest first on the wire.
        let n = enc.encode(102, 97_920, &frame(102), 2, &mut out).unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!(p.redundant()[0].ts_offset, 1920);
        assert_eq!(p.redundant()[1].ts_offset, 960);
        let got: Vec<_> = p.redundant_with_seq(102, 97_920).collect();
        assert_eq!(
            got,
            vec![
                (101, 96_960, &frame(101)[..]),
                (100, 96_000, &frame(100)[..])
            ]
        );
        assert_eq!(p.primary.payload, &frame(102)[..]);
        assert_eq!(
            n,
            4 * 2 + 1 + frame(100).len() + frame(101).len() + frame(102).len()
        );
        // Redundancy 1 and 0.
        let n = enc.encode(103, 98_880, &frame(103), 1, &mut out).unwrap();
        let p = parse(&out[..n]).unwrap();
        assert_eq!(p.redundant_with_seq(103, 98_880).count(), 1);
        let n = enc.encode(104, 99_840, &frame(104), 0, &mut out).unwrap();
        assert_eq!(n, 1 + frame(104).len());
        assert_eq!(out[0], 111);
    }

    #[test]
    fn a_gap_in_sequence_or_a_long_pause_is_not_repeated() {
        let mut enc = RedEncoder::new(111);
        let mut out = [0u8; 1500];
        enc.encode(10, 0, &frame(10), 2, &mut out).unwrap();
        // After a DTX pause of 400 ms the previous frame is too far back for the 14-bit offset.
        let n = enc.encode(11, 960 * 21, &frame(11), 2, &mut out).unwrap();
        assert_eq!(parse(&out[..n]).unwrap().redundant().len(), 0);
        // A sequence gap (frame 12 never encoded): 11 is two back, but 12 is missing, so none.
        let n = enc.encode(13, 960 * 23, &frame(13), 2, &mut out).unwrap();
        assert_eq!(parse(&out[..n]).unwrap().redundant().len(), 0);
        // After a reset nothing is repeated.
        enc.reset();
        let n = enc.encode(14, 960 * 24, &frame(14), 2, &mut out).unwrap();
        assert_eq!(parse(&out[..n]).unwrap().redundant().len(), 0);
    }

    #[test]
    fn too_small_an_output_is_refused_without_writing_past_it() {
        let mut enc = RedEncoder::new(111);
        let mut small = [0u8; 10];
        assert_eq!(enc.encode(1, 0, &frame(1), 2, &mut small), None);
        let mut out = [0u8; 1500];
        // The frame was still remembered.
        let n = enc.encode(2, 960, &frame(2), 2, &mut out).unwrap();
        assert_eq!(parse(&out[..n]).unwrap().redundant().len(), 1);
    }

    #[test]
    fn encoding_and_parsing_do_not_allocate() {
        let mut enc = RedEncoder::new(111);
        let mut out = [0u8; 1500];
        let frames: Vec<Vec<u8>> = (0..50).map(frame).collect();
        let before = alloc_count::allocations();
        let mut total = 0;
        for (i, f) in frames.iter().enumerate() {
            let n = enc
                .encode(i as u16, i as u32 * 960, f, 2, &mut out)
                .unwrap();
            let p = parse(&out[..n]).unwrap();
            total += p.redundant_with_seq(i as u16, i as u32 * 960).count();
        }
        assert_eq!(alloc_count::allocations(), before);
        assert_eq!(total, 2 * 50 - 3);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(parse(&[]), Err(RedError::TruncatedHeader));
        // A redundant header cut short.
        assert_eq!(parse(&[0x80 | 111, 0, 1]), Err(RedError::TruncatedHeader));
        // A header chain that never reaches the primary header.
        assert_eq!(
            parse(&[0x80 | 111, 0, 4 << 2, 0]),
            Err(RedError::TruncatedHeader)
        );
        // A block longer than what follows.
        assert_eq!(
            parse(&[0x80 | 111, 0, 4 << 2 | 3, 0xff, 111, 1, 2]),
            Err(RedError::TruncatedBlock)
        );
        // Too many blocks.
        let mut many = vec![];
        for _ in 0..=MAX_PARSED_BLOCKS {
            many.extend_from_slice(&[0x80 | 111, 0, 4 << 2, 0]);
        }
        many.push(111);
        assert_eq!(parse(&many), Err(RedError::TooManyBlocks));
        // Just a primary header: an empty primary is valid RED.
        let p = parse(&[111]).unwrap();
        assert!(p.primary.payload.is_empty());
    }

    #[test]
    fn out_of_order_or_foreign_blocks_are_not_placed() {
        // Two redundant blocks whose offsets grow towards the primary (wrong order), and one
        // of another payload type.
        fn hdr(pt: u8, off: u32, len: usize) -> [u8; 4] {
            [
                0x80 | pt,
                (off >> 6) as u8,
                (((off & 0x3f) << 2) as usize | (len >> 8)) as u8,
                len as u8,
            ]
        }
        let mut data = Vec::new();
        data.extend_from_slice(&hdr(111, 960, 1));
        data.extend_from_slice(&hdr(111, 1920, 1));
        data.extend_from_slice(&[111, 0xaa, 0xbb, 0xcc]);
        let p = parse(&data).unwrap();
        assert_eq!(p.redundant().len(), 2);
        // Newest-first walk: offset 1920 first (accepted as seq-1), then 960 is not older: stop.
        let got: Vec<_> = p.redundant_with_seq(50, 10_000).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 49);
        let mut foreign = hdr(9, 960, 1).to_vec();
        foreign.extend_from_slice(&[111, 0xaa, 0xbb]);
        let p = parse(&foreign).unwrap();
        assert_eq!(p.redundant_with_seq(1, 5000).count(), 0);
    }

    #[test]
    fn redundancy_follows_the_loss() {
        assert_eq!(redundancy_for_loss(0.0), 0);
        assert_eq!(redundancy_for_loss(1.0), 0);
        assert_eq!(redundancy_for_loss(3.0), 1);
        assert_eq!(redundancy_for_loss(10.0), 2);
        assert_eq!(redundancy_for_loss(30.0), 2);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..200), seq: u16, ts: u32) {
            if let Ok(p) = parse(&data) {
                let mut covered = 1 + 4 * p.redundant().len() + p.primary.payload.len();
                for b in p.redundant() {
                    covered += b.payload.len();
                }
                prop_assert_eq!(covered, data.len());
                for (_, _, payload) in p.redundant_with_seq(seq, ts) {
                    prop_assert!(!payload.is_empty());
                }
            }
        }

        #[test]
        fn encoder_output_always_parses_back(lens in proptest::collection::vec(0usize..1100, 1..20), redundancy in 0usize..4) {
            let mut enc = RedEncoder::new(111);
            let mut out = [0u8; 4000];
            for (i, &len) in lens.iter().enumerate() {
                let f = vec![i as u8; len];
                let n = enc.encode(i as u16, i as u32 * 960, &f, redundancy, &mut out).unwrap();
                let p = parse(&out[..n]).unwrap();
                prop_assert_eq!(p.primary.payload, &f[..]);
                prop_assert!(p.redundant().len() <= redundancy.min(MAX_REDUNDANCY));
                for (seq, ts, payload) in p.redundant_with_seq(i as u16, i as u32 * 960) {
                    let back = (i as u16).wrapping_sub(seq) as usize;
                    prop_assert!(back >= 1 && back <= i);
                    prop_assert_eq!(ts, (i - back) as u32 * 960);
                    prop_assert_eq!(payload, &vec![(i - back) as u8; lens[i - back]][..]);
                }
            }
        }
    }
}
