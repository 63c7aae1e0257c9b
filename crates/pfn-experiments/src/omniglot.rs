//! The Omniglot characters of `pfn reproduce strokes` ([`crate::strokes`]), read from the zip
//! archives in `data/omniglot/` (copies of the data set's public distribution; see
//! `data/README.md`):
//!
//! * `images_background_small1.zip` and `images_background_small2.zip`: background alphabets,
//!   `<split>/<alphabet>/<character>/<id>_<drawer>.png`, 20 drawings per character. Both archives
//!   hold `Greek` and `Latin` (the same files): an alphabet found in both is kept once
//!   ([`Background::duplicates`]), so the two archives give 8 distinct alphabets;
//! * `all_runs.zip`: the 20 one-shot runs (`runNN/training/classNN.png`,
//!   `runNN/test/itemNN.png`, `runNN/class_labels.txt` pairing each test item with its
//!   training image).
//!
//! Every image is a 105 x 105 black-on-white PNG. [`glyph_from_png`] maps it as the paper did
//! for its 28 x 28 model (spec §4.6: "resized to 28 x 28 and inverted, 1 − x/255"): gray values
//! in [0, 1] (alpha composited onto white), downsampled to 28 x 28 by area averaging
//! ([`downsample_area`]: each output pixel the mean of the input area it covers, partial pixels
//! weighted by their overlap), then inverted, so the background is 0 and ink is bright, as in the
//! stroke prior's images (`pfn_prior::strokes`). The paper resized with PIL's default filter,
//! which differs from area averaging in detail.
//!
//! Archives are read in memory; alphabets, characters and drawings are sorted by name, so the
//! data never depend on the order of the archive's entries. A missing archive, an unreadable
//! entry or a corrupt image is an [`ExperimentError::Data`] naming the file (and the entry).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use pfn_prior::strokes::IMAGE_SIDE;

use crate::error::ExperimentError;

/// Where the archives are read by default (relative to the working directory: run from the
/// repository root).
pub const DEFAULT_DATA_DIR: &str = "data/omniglot";

/// The archives of background alphabets.
pub const BACKGROUND_ARCHIVES: [&str; 2] = [
    "images_background_small1.zip",
    "images_background_small2.zip",
];

/// The archive of the 20-way 1-shot runs.
pub const RUNS_ARCHIVE: &str = "all_runs.zip";

/// Side of the original images in pixels.
pub const SOURCE_SIDE: usize = 105;

/// Largest entry read from an archive (a PNG of the data set is about 1 KB).
const MAX_ENTRY_BYTES: u64 = 8 << 20;

/// Largest image side accepted by the decoder.
const MAX_IMAGE_SIDE: u32 = 4096;

/// Pixels of one model image (`28 * 28`).
pub const PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// One character of an alphabet with its drawings.
#[derive(Debug, Clone)]
pub struct Character {
    /// The folder name, e.g. `character07`.
    pub name: String,
    /// The drawings' file names (sorted), e.g. `0115_03.png`.
    pub files: Vec<String>,
    /// The drawings as 28 x 28 images (row-major, [`PIXELS`] values in [0, 1], 0 background),
    /// in the order of `files`.
    pub drawings: Vec<Vec<f64>>,
}

/// One alphabet.
#[derive(Debug, Clone)]
pub struct Alphabet {
    /// The folder name, e.g. `Korean`.
    pub name: String,
    /// The archive it was read from.
    pub archive: String,
    /// Its characters, sorted by name.
    pub characters: Vec<Character>,
}

impl Alphabet {
    /// Number of drawings over all characters.
    pub fn drawings(&self) -> usize {
        self.characters.iter().map(|c| c.drawings.len()).sum()
    }
}

/// The background alphabets of the archives.
#[derive(Debug, Clone)]
pub struct Background {
    /// Distinct alphabets, sorted by name.
    pub alphabets: Vec<Alphabet>,
    /// Alphabets found in more than one archive (kept once, from the first archive), with the
    /// archive they were skipped in.
    pub duplicates: Vec<(String, String)>,
}

/// One 20-way 1-shot run of `all_runs.zip`.
#[derive(Debug, Clone)]
pub struct OneShotRun {
    /// The folder name, e.g. `run07`.
    pub name: String,
    /// One image per class (class `k` is the `k`-th training file in name order).
    pub training: Vec<Vec<f64>>,
    /// The test images, in the order of `class_labels.txt`.
    pub test: Vec<Vec<f64>>,
    /// The class of each test image.
    pub labels: Vec<usize>,
}

fn data_error(path: impl Into<String>, problem: impl Into<String>) -> ExperimentError {
    ExperimentError::Data {
        path: path.into(),
        problem: problem.into(),
    }
}

/// The entries of an archive: (name, bytes) of every file (directories left out), in archive
/// order.
pub fn read_archive(path: &Path) -> Result<Vec<(String, Vec<u8>)>, ExperimentError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        data_error(
            &shown,
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "not found ({e}); the Omniglot archives belong in {DEFAULT_DATA_DIR}/ (see data/README.md), or give their folder with --data"
                )
            } else {
                format!("cannot read: {e}")
            },
        )
    })?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| data_error(&shown, format!("not a readable zip archive: {e}")))?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| data_error(&shown, format!("entry {i}: {e}")))?;
        if file.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        if file.size() > MAX_ENTRY_BYTES {
            return Err(data_error(
                format!("{shown}: {name}"),
                format!(
                    "{} bytes uncompressed; at most {MAX_ENTRY_BYTES} expected",
                    file.size()
                ),
            ));
        }
        let mut data = Vec::with_capacity(file.size() as usize);
        (&mut file)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| data_error(format!("{shown}: {name}"), format!("cannot unpack: {e}")))?;
        out.push((name, data));
    }
    Ok(out)
}

/// Gray values of a PNG in [0, 1] (0 black, 1 white; alpha composited onto white), row-major,
/// with the image's height and width.
pub fn decode_gray_png(bytes: &[u8]) -> Result<(Vec<f64>, usize, usize), String> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let (w, h) = {
        let info = reader.info();
        (info.width, info.height)
    };
    if w == 0 || h == 0 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(format!(
            "a {w} x {h} image; sides of 1..={MAX_IMAGE_SIDE} pixels expected"
        ));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("corrupt PNG data: {e}"))?;
    let data = &buf[..frame.buffer_size()];
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err("an indexed PNG the decoder did not expand".into());
        }
    };
    if frame.bit_depth != png::BitDepth::Eight || frame.line_size != w * channels {
        return Err(format!(
            "unexpected decoded layout ({:?}, {} bytes per row for {w} pixels)",
            frame.bit_depth, frame.line_size
        ));
    }
    let gray = data
        .chunks_exact(channels)
        .map(|p| {
            let v = |c: u8| f64::from(c) / 255.0;
            let (g, a) = match channels {
                1 => (v(p[0]), 1.0),
                2 => (v(p[0]), v(p[1])),
                3 => ((v(p[0]) + v(p[1]) + v(p[2])) / 3.0, 1.0),
                _ => ((v(p[0]) + v(p[1]) + v(p[2])) / 3.0, v(p[3])),
            };
            a * g + (1.0 - a)
        })
        .collect();
    Ok((gray, h, w))
}

/// Weights of area averaging from `n` source pixels onto `m` target pixels: row `i` holds the
/// overlap of target pixel `i` (the source interval `[i n/m, (i+1) n/m)`) with each source pixel,
/// divided by the interval's length.
fn area_weights(n: usize, m: usize) -> Vec<f64> {
    let scale = n as f64 / m as f64;
    let mut w = vec![0.0; m * n];
    for i in 0..m {
        let (lo, hi) = (i as f64 * scale, (i + 1) as f64 * scale);
        let first = lo.floor() as usize;
        let last = (hi.ceil() as usize).min(n);
        for j in first..last {
            let overlap = (hi.min((j + 1) as f64) - lo.max(j as f64)).max(0.0);
            w[i * n + j] = overlap / scale;
        }
    }
    w
}

/// Area-averages a row-major `h x w` image to `side x side` (each output pixel the mean of the
/// input area it covers; an input at most as large as the output is averaged the same way, which
/// then repeats pixels).
pub fn downsample_area(src: &[f64], h: usize, w: usize, side: usize) -> Vec<f64> {
    assert_eq!(src.len(), h * w, "image size");
    let wy = area_weights(h, side);
    let wx = area_weights(w, side);
    // Rows first: (side x h) * (h x w) -> side x w.
    let mut rows = vec![0.0; side * w];
    for i in 0..side {
        for (j, &a) in wy[i * h..(i + 1) * h].iter().enumerate() {
            if a != 0.0 {
                for (o, &s) in rows[i * w..(i + 1) * w]
                    .iter_mut()
                    .zip(&src[j * w..(j + 1) * w])
                {
                    *o += a * s;
                }
            }
        }
    }
    let mut out = vec![0.0; side * side];
    for i in 0..side {
        let row = &rows[i * w..(i + 1) * w];
        for k in 0..side {
            out[i * side + k] = wx[k * w..(k + 1) * w]
                .iter()
                .zip(row)
                .map(|(a, s)| a * s)
                .sum();
        }
    }
    out
}

/// A PNG as the model sees it: gray values downsampled to 28 x 28 by area averaging and inverted
/// (`1 − gray`: background 0, ink bright), [`PIXELS`] values in [0, 1], row-major.
pub fn glyph_from_png(bytes: &[u8]) -> Result<Vec<f64>, String> {
    let (gray, h, w) = decode_gray_png(bytes)?;
    Ok(downsample_area(&gray, h, w, IMAGE_SIDE)
        .into_iter()
        .map(|v| (1.0 - v).clamp(0.0, 1.0))
        .collect())
}

/// The drawings of an alphabet's characters as read: character -> (file, image).
type CharactersFound = BTreeMap<String, Vec<(String, Vec<f64>)>>;

/// A one-shot run as read: images by path inside the run, and `class_labels.txt`.
type RunFound = (BTreeMap<String, Vec<f64>>, Option<String>);

/// Loads the background alphabets of [`BACKGROUND_ARCHIVES`] in `dir`.
pub fn load_background(dir: &Path) -> Result<Background, ExperimentError> {
    let mut alphabets: BTreeMap<String, Alphabet> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for archive in BACKGROUND_ARCHIVES {
        let path = dir.join(archive);
        let shown = path.display().to_string();
        let mut found: BTreeMap<String, CharactersFound> = BTreeMap::new();
        for (name, bytes) in read_archive(&path)? {
            let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
            let [_, alphabet, character, file] = parts[..] else {
                if name.to_ascii_lowercase().ends_with(".png") {
                    return Err(data_error(
                        format!("{shown}: {name}"),
                        "expected <split>/<alphabet>/<character>/<file>.png",
                    ));
                }
                continue;
            };
            if !file.to_ascii_lowercase().ends_with(".png") {
                continue;
            }
            let glyph =
                glyph_from_png(&bytes).map_err(|p| data_error(format!("{shown}: {name}"), p))?;
            found
                .entry(alphabet.to_string())
                .or_default()
                .entry(character.to_string())
                .or_default()
                .push((file.to_string(), glyph));
        }
        if found.is_empty() {
            return Err(data_error(&shown, "holds no character images"));
        }
        for (alphabet, characters) in found {
            if alphabets.contains_key(&alphabet) {
                duplicates.push((alphabet, archive.to_string()));
                continue;
            }
            let characters = characters
                .into_iter()
                .map(|(name, mut drawings)| {
                    drawings.sort_by(|a, b| a.0.cmp(&b.0));
                    let (files, drawings) = drawings.into_iter().unzip();
                    Character {
                        name,
                        files,
                        drawings,
                    }
                })
                .collect();
            alphabets.insert(
                alphabet.clone(),
                Alphabet {
                    name: alphabet,
                    archive: archive.to_string(),
                    characters,
                },
            );
        }
    }
    Ok(Background {
        alphabets: alphabets.into_values().collect(),
        duplicates,
    })
}

/// Loads the one-shot runs of [`RUNS_ARCHIVE`] in `dir`, sorted by name.
pub fn load_runs(dir: &Path) -> Result<Vec<OneShotRun>, ExperimentError> {
    let path: PathBuf = dir.join(RUNS_ARCHIVE);
    let shown = path.display().to_string();
    let mut runs: BTreeMap<String, RunFound> = BTreeMap::new();
    for (name, bytes) in read_archive(&path)? {
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        let Some((&run, rest)) = parts.split_first() else {
            continue;
        };
        let entry = runs.entry(run.to_string()).or_default();
        let rel = rest.join("/");
        if rel == "class_labels.txt" {
            entry.1 = Some(String::from_utf8(bytes).map_err(|_| {
                data_error(
                    format!("{shown}: {name}"),
                    "class_labels.txt is not UTF-8 text",
                )
            })?);
        } else if rel.to_ascii_lowercase().ends_with(".png") {
            let glyph =
                glyph_from_png(&bytes).map_err(|p| data_error(format!("{shown}: {name}"), p))?;
            entry.0.insert(rel, glyph);
        }
    }
    let mut out = Vec::new();
    for (run, (mut images, labels)) in runs {
        if images.is_empty() && labels.is_none() {
            continue;
        }
        let at = |what: &str| format!("{shown}: {run}/{what}");
        let Some(labels) = labels else {
            return Err(data_error(at("class_labels.txt"), "missing"));
        };
        let training_files: Vec<String> = images
            .keys()
            .filter(|k| k.starts_with("training/"))
            .cloned()
            .collect();
        if training_files.len() < 2 {
            return Err(data_error(
                at("training/"),
                format!(
                    "{} training image(s); at least 2 expected",
                    training_files.len()
                ),
            ));
        }
        let mut test = Vec::new();
        let mut classes = Vec::new();
        for (line_no, line) in labels.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [item, class] = fields[..] else {
                return Err(data_error(
                    at("class_labels.txt"),
                    format!(
                        "line {}: expected '<test image> <training image>', found '{line}'",
                        line_no + 1
                    ),
                ));
            };
            // Paths in the file start with the run's folder: `run01/test/item01.png`.
            let strip = |p: &str| p.strip_prefix(&format!("{run}/")).unwrap_or(p).to_string();
            let (item, class) = (strip(item), strip(class));
            let Some(k) = training_files.iter().position(|t| *t == class) else {
                return Err(data_error(
                    at("class_labels.txt"),
                    format!(
                        "line {}: {class} is not a training image of the run",
                        line_no + 1
                    ),
                ));
            };
            let Some(image) = images.remove(&item) else {
                return Err(data_error(
                    at("class_labels.txt"),
                    format!(
                        "line {}: {item} is not an image of the run (or listed twice)",
                        line_no + 1
                    ),
                ));
            };
            test.push(image);
            classes.push(k);
        }
        if test.is_empty() {
            return Err(data_error(at("class_labels.txt"), "lists no test image"));
        }
        let training = training_files
            .iter()
            .map(|f| images.remove(f).unwrap_or_default())
            .collect();
        out.push(OneShotRun {
            name: run,
            training,
            test,
            labels: classes,
        });
    }
    if out.is_empty() {
        return Err(data_error(&shown, "holds no runs"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/omniglot")
    }

    /// A grayscale PNG of `w x h` pixels with the given 8-bit values.
    fn encode_png(values: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(values).unwrap();
        }
        out
    }

    #[test]
    fn area_averaging_keeps_the_mean_and_constant_images() {
        let src: Vec<f64> = (0..105 * 105).map(|i| f64::from(i % 7) / 6.0).collect();
        let out = downsample_area(&src, 105, 105, 28);
        assert_eq!(out.len(), 784);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean(&out) - mean(&src)).abs() < 1e-12);
        let ones = downsample_area(&[1.0; 105 * 105], 105, 105, 28);
        assert!(ones.iter().all(|v| (v - 1.0).abs() < 1e-12));
        // 4 x 4 -> 2 x 2 is the mean of each 2 x 2 block.
        let small: Vec<f64> = (0..16).map(f64::from).collect();
        assert_eq!(downsample_area(&small, 4, 4, 2), vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn a_synthetic_png_is_inverted_and_downsampled() {
        // White 105 x 105 with a black 15-pixel square in the top-left corner.
        let mut px = vec![255u8; 105 * 105];
        for r in 0..15 {
            for c in 0..15 {
                px[r * 105 + c] = 0;
            }
        }
        let g = glyph_from_png(&encode_png(&px, 105, 105)).unwrap();
        assert_eq!(g.len(), PIXELS);
        // 15 px = 4 output pixels exactly (3.75 px each): fully inked.
        assert!((g[0] - 1.0).abs() < 1e-12 && (g[3 * 28 + 3] - 1.0).abs() < 1e-12);
        assert_eq!(g[4], 0.0);
        assert_eq!(g[27 * 28 + 27], 0.0);
        let e = glyph_from_png(b"\x89PNG\r\n\x1a\nnot really").unwrap_err();
        assert!(e.contains("PNG"), "{e}");
    }

    #[test]
    fn omniglot_glyphs_have_the_right_shape_and_a_dark_background() {
        let bg = load_background(&data_dir()).unwrap();
        let names: Vec<&str> = bg.alphabets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        assert!(names.contains(&"Korean") && names.contains(&"Sanskrit"));
        assert_eq!(bg.duplicates.len(), 2, "{:?}", bg.duplicates);
        for a in &bg.alphabets {
            assert!(a.characters.len() >= 5, "{}", a.name);
            for c in &a.characters {
                assert_eq!(c.drawings.len(), 20, "{}/{}", a.name, c.name);
            }
        }
        let g = &bg.alphabets[0].characters[0].drawings[0];
        assert_eq!(g.len(), PIXELS);
        assert!(g.iter().all(|v| (0.0..=1.0).contains(v)));
        let zeros = g.iter().filter(|&&v| v == 0.0).count();
        assert!(zeros > PIXELS / 2, "{zeros} background pixels");
        let ink: f64 = g.iter().sum();
        assert!(ink > 5.0, "ink {ink}");
        let runs = load_runs(&data_dir()).unwrap();
        assert_eq!(runs.len(), 20);
        for r in &runs {
            assert_eq!((r.training.len(), r.test.len()), (20, 20), "{}", r.name);
            assert!(r.labels.iter().all(|&k| k < 20));
        }
    }

    #[test]
    fn missing_and_corrupt_archives_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("pfn-omniglot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = load_background(&dir).unwrap_err().to_string();
        assert!(
            e.contains("images_background_small1.zip") && e.contains("not found"),
            "{e}"
        );
        std::fs::write(dir.join(RUNS_ARCHIVE), b"PK\x03\x04 broken").unwrap();
        let e = load_runs(&dir).unwrap_err().to_string();
        assert!(e.contains("all_runs.zip") && e.contains("zip"), "{e}");
        // A readable archive with a corrupt image: the error names the archive and the entry.
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let entry = "images_background_small1/Foo/character01/0001_01.png";
        zip.start_file(entry, opts).unwrap();
        std::io::Write::write_all(&mut zip, b"\x89PNG\r\n\x1a\ntruncated").unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        std::fs::write(dir.join(BACKGROUND_ARCHIVES[0]), bytes).unwrap();
        let e = load_background(&dir).unwrap_err().to_string();
        assert!(
            e.contains("images_background_small1.zip") && e.contains(entry) && e.contains("PNG"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
