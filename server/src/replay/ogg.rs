//! A small Ogg Opus writer and reader (RFC 3533 pages, RFC 7845 Opus mapping), pure: bytes
//! in, bytes out.
//!
//! - One logical stream. The first page holds only `OpusHead` (beginning of stream), the
//!   next page(s) only `OpusTags`; audio pages follow, the last one flagged end of stream.
//! - A page's granule position is the 48 kHz sample count (pre-skip included) at the end
//!   of the last packet that finishes on it; pages where no packet finishes carry -1.
//! - Packets are laced in 255-byte segments; a packet that does not fit the page's 255
//!   segments continues on the next page (continued-packet flag).
//! - The CRC is Ogg's: polynomial 0x04c11db7, not reflected, initial value 0, computed with
//!   the CRC field zeroed.

/// Most lacing segments of one page.
const MAX_SEGMENTS: usize = 255;
/// Audio packets gathered into one page before it is written (20 ms each: about 1 s).
pub const PACKETS_PER_PAGE: usize = 50;

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut j = 0;
        while j < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            j += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// The Ogg CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ CRC_TABLE[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// `OpusHead` for a mono 48 kHz stream (channel mapping family 0).
pub fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(1); // channels
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // mapping family
    h
}

/// `OpusTags` with `vendor` and `KEY=value` comments.
pub fn opus_tags(vendor: &str, comments: &[String]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        t.extend_from_slice(&(c.len() as u32).to_le_bytes());
        t.extend_from_slice(c.as_bytes());
    }
    t
}

/// `HH:MM:SS.mmm`, the Vorbis chapter time format.
pub fn chapter_time(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    format!("{h:02}:{m:02}:{:02}.{:03}", rest / 1000, rest % 1000)
}

/// The Vorbis chapter comments for `(start_ms, name)` chapters (at most 999).
pub fn chapter_comments(chapters: &[(u64, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (ms, name)) in chapters.iter().take(999).enumerate() {
        let n = i + 1;
        out.push(format!("CHAPTER{n:03}={}", chapter_time(*ms)));
        // Comments are one line of UTF-8; names are cleaned on sign-up, but be safe.
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        out.push(format!("CHAPTER{n:03}NAME={name}"));
    }
    out
}

/// Writes one Ogg logical stream into a byte vector.
#[derive(Debug)]
pub struct OggWriter {
    out: Vec<u8>,
    serial: u32,
    seq: u32,
    /// Packets of the page being filled, with the granule at each one's end.
    pending: Vec<(Vec<u8>, i64)>,
    started: bool,
}

impl OggWriter {
    pub fn new(serial: u32) -> Self {
        OggWriter {
            out: Vec::new(),
            serial,
            seq: 0,
            pending: Vec::new(),
            started: false,
        }
    }

    /// Writes `OpusHead` and `OpusTags`, each on its own page(s).
    pub fn headers(&mut self, head: &[u8], tags: &[u8]) {
        self.write_packets(&[(head, 0)], false);
        self.write_packets(&[(tags, 0)], false);
    }

    /// Adds an audio packet ending at `granule` (48 kHz samples, pre-skip included).
    pub fn packet(&mut self, data: &[u8], granule: i64) {
        self.pending.push((data.to_vec(), granule));
        if self.pending.len() >= PACKETS_PER_PAGE {
            self.flush(false);
        }
    }

    fn flush(&mut self, eos: bool) {
        let pending = std::mem::take(&mut self.pending);
        let refs: Vec<(&[u8], i64)> = pending.iter().map(|(d, g)| (d.as_slice(), *g)).collect();
        self.write_packets(&refs, eos);
    }

    /// Ends the stream (the last page is flagged end of stream) and returns the file.
    pub fn finish(mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            // A stream must end with an EOS page; an empty one is allowed.
            self.write_page(&[], &[], -1, false, true);
        } else {
            self.flush(true);
        }
        self.out
    }

    /// Writes whole packets onto as many pages as they need (the last page is written
    /// even if not full).
    fn write_packets(&mut self, packets: &[(&[u8], i64)], eos: bool) {
        let mut segs: Vec<u8> = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        let mut granule = -1i64;
        let mut continued = false;
        for (data, g) in packets {
            // n full 255-byte segments, then one shorter (possibly empty) that ends it.
            let full = data.len() / 255;
            let mut off = 0;
            for k in 0..=full {
                if segs.len() == MAX_SEGMENTS {
                    self.write_page(&segs, &body, granule, continued, false);
                    segs.clear();
                    body.clear();
                    granule = -1;
                    // Part of this packet is on the page just written.
                    continued = k > 0;
                }
                let len = if k < full { 255 } else { data.len() % 255 };
                segs.push(len as u8);
                body.extend_from_slice(&data[off..off + len]);
                off += len;
            }
            granule = *g;
        }
        self.write_page(&segs, &body, granule, continued, eos);
    }

    fn write_page(&mut self, segs: &[u8], body: &[u8], granule: i64, continued: bool, eos: bool) {
        let mut flags = 0u8;
        if continued {
            flags |= 0x01;
        }
        if !self.started {
            flags |= 0x02;
            self.started = true;
        }
        if eos {
            flags |= 0x04;
        }
        let start = self.out.len();
        self.out.extend_from_slice(b"OggS");
        self.out.push(0);
        self.out.push(flags);
        self.out.extend_from_slice(&granule.to_le_bytes());
        self.out.extend_from_slice(&self.serial.to_le_bytes());
        self.out.extend_from_slice(&self.seq.to_le_bytes());
        self.out.extend_from_slice(&0u32.to_le_bytes());
        self.out.push(segs.len() as u8);
        self.out.extend_from_slice(segs);
        self.out.extend_from_slice(body);
        let crc = crc32(&self.out[start..]);
        self.out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.seq += 1;
    }
}

/// One page as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub flags: u8,
    pub granule: i64,
    pub serial: u32,
    pub seq: u32,
    pub segments: Vec<u8>,
    pub body: Vec<u8>,
}

/// Parses every page of `data`, checking capture patterns, lengths and CRCs.
pub fn read_pages(data: &[u8]) -> Result<Vec<Page>, String> {
    let mut pages = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let h = data.get(at..at + 27).ok_or("truncated page header")?;
        if &h[..4] != b"OggS" || h[4] != 0 {
            return Err(format!("no Ogg page at byte {at}"));
        }
        let nsegs = h[26] as usize;
        let segments = data
            .get(at + 27..at + 27 + nsegs)
            .ok_or("truncated segment table")?
            .to_vec();
        let body_len: usize = segments.iter().map(|&s| s as usize).sum();
        let end = at + 27 + nsegs + body_len;
        let page = data.get(at..end).ok_or("truncated page body")?;
        let stored = u32::from_le_bytes(h[22..26].try_into().expect("4 bytes"));
        let mut copy = page.to_vec();
        copy[22..26].fill(0);
        if crc32(&copy) != stored {
            return Err(format!("bad CRC in page at byte {at}"));
        }
        pages.push(Page {
            flags: h[5],
            granule: i64::from_le_bytes(h[6..14].try_into().expect("8 bytes")),
            serial: u32::from_le_bytes(h[14..18].try_into().expect("4 bytes")),
            seq: u32::from_le_bytes(h[18..22].try_into().expect("4 bytes")),
            body: page[27 + nsegs..].to_vec(),
            segments,
        });
        at = end;
    }
    Ok(pages)
}

/// The packets of a single-stream Ogg file, in order (continued packets joined).
pub fn read_packets(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut packets = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for page in read_pages(data)? {
        let mut off = 0;
        for &s in &page.segments {
            current.extend_from_slice(&page.body[off..off + s as usize]);
            off += s as usize;
            if s < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        return Err("the last packet is unfinished".into());
    }
    Ok(packets)
}

/// The comments of an `OpusTags` packet.
pub fn parse_opus_tags(packet: &[u8]) -> Result<Vec<String>, String> {
    let rest = packet.strip_prefix(b"OpusTags").ok_or("not OpusTags")?;
    let mut at = 0;
    let u32_at = |at: &mut usize| -> Result<usize, String> {
        let b = rest.get(*at..*at + 4).ok_or("truncated OpusTags")?;
        *at += 4;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
    };
    let vendor = u32_at(&mut at)?;
    at += vendor;
    let n = u32_at(&mut at)?;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let len = u32_at(&mut at)?;
        let c = rest.get(at..at + len).ok_or("truncated comment")?;
        out.push(String::from_utf8_lossy(c).into_owned());
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // CRC-32/OGG (poly 0x04c11db7, init 0, no reflection, no final xor) of "123456789".
        assert_eq!(crc32(b"123456789"), 0x89a1_897f);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn headers_pages_and_granules() {
        let mut w = OggWriter::new(7);
        w.headers(&opus_head(312, 48_000), &opus_tags("ruang", &[]));
        for i in 0..120u32 {
            w.packet(&[i as u8; 40], 312 + 960 * (i as i64 + 1));
        }
        let bytes = w.finish();
        let pages = read_pages(&bytes).unwrap();
        // Head, tags, then 50 + 50 + 20 packets.
        assert_eq!(pages.len(), 5);
        assert_eq!(pages[0].flags, 0x02, "first page begins the stream");
        assert_eq!(pages[0].granule, 0);
        assert_eq!(pages[1].flags, 0);
        assert_eq!(pages.last().unwrap().flags, 0x04, "last page ends it");
        assert_eq!(pages[2].granule, 312 + 960 * 50);
        assert_eq!(pages[3].granule, 312 + 960 * 100);
        assert_eq!(pages[4].granule, 312 + 960 * 120);
        for (i, p) in pages.iter().enumerate() {
            assert_eq!(p.seq, i as u32);
            assert_eq!(p.serial, 7);
        }
        let packets = read_packets(&bytes).unwrap();
        assert_eq!(packets.len(), 122);
        assert_eq!(&packets[0][..8], b"OpusHead");
        assert_eq!(packets[0].len(), 19);
        assert_eq!(u16::from_le_bytes([packets[0][10], packets[0][11]]), 312);
        assert_eq!(packets[121], vec![119u8; 40]);
    }

    #[test]
    fn big_packets_span_pages_and_lace_exact_multiples() {
        let mut w = OggWriter::new(1);
        w.headers(&opus_head(0, 48_000), &opus_tags("v", &[]));
        // 255 * 300 bytes needs more than one page's 255 segments; 510 ends with a 0 segment.
        let big: Vec<u8> = (0..255 * 300).map(|i| (i % 251) as u8).collect();
        w.packet(&big, 960);
        w.packet(&[9u8; 510], 1920);
        w.packet(&[1u8; 3], 2880);
        let bytes = w.finish();
        let pages = read_pages(&bytes).unwrap();
        assert!(pages.len() >= 4);
        // The page after the first audio page continues a packet.
        assert_eq!(pages[3].flags & 0x01, 0x01, "{:?}", pages[3].flags);
        assert_eq!(
            pages[2].granule, -1,
            "no packet finishes on the first big page"
        );
        let packets = read_packets(&bytes).unwrap();
        assert_eq!(packets.len(), 5);
        assert_eq!(packets[2], big);
        assert_eq!(packets[3], vec![9u8; 510]);
        assert_eq!(packets[4], vec![1u8; 3]);
        assert_eq!(pages.last().unwrap().granule, 2880);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut w = OggWriter::new(1);
        w.headers(&opus_head(0, 48_000), &opus_tags("v", &[]));
        w.packet(&[5u8; 30], 960);
        let mut bytes = w.finish();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x10;
        assert!(read_pages(&bytes).unwrap_err().contains("CRC"));
        assert!(read_pages(&bytes[..bytes.len() - 1]).is_err());
        assert!(read_pages(b"nope").is_err());
    }

    #[test]
    fn chapters_in_opus_tags() {
        assert_eq!(chapter_time(5_120), "00:00:05.120");
        assert_eq!(chapter_time(3_723_004), "01:02:03.004");
        let comments = chapter_comments(&[(5_120, "Maya".into()), (61_000, "Bu\ndi".into())]);
        assert_eq!(
            comments,
            [
                "CHAPTER001=00:00:05.120",
                "CHAPTER001NAME=Maya",
                "CHAPTER002=00:01:01.000",
                "CHAPTER002NAME=Budi",
            ]
        );
        let tags = opus_tags("ruang", &comments);
        assert_eq!(parse_opus_tags(&tags).unwrap(), comments);
        assert!(parse_opus_tags(&tags[..tags.len() - 2]).is_err());
    }
}
