//! A grid of small grayscale images (e.g. the episodes of an image prior: one row per episode,
//! each image framed and captioned in its class's colour), written as PNG or SVG.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{register_font, save_drawing, Drawing, PlotError, Rgb};

/// One image of the grid.
#[derive(Debug, Clone)]
pub struct ImageTile {
    /// Pixel values in [0, 1] (clamped), row-major, [`ImageGrid::image_shape`] of them; 0 is drawn
    /// white and 1 black.
    pub pixels: Vec<f32>,
    /// Text under the image (empty for none).
    pub caption: String,
    /// Colour of the frame and the caption.
    pub color: Rgb,
}

/// One row of the grid: a label on the left and the images in order.
#[derive(Debug, Clone)]
pub struct ImageRow {
    /// Text left of the row (empty for none).
    pub label: String,
    /// The images.
    pub tiles: Vec<ImageTile>,
}

/// Rows of equally sized grayscale images under a title.
#[derive(Debug, Clone)]
pub struct ImageGrid {
    /// Title above the grid.
    pub title: String,
    /// Optional second line under the title (empty for none).
    pub subtitle: String,
    /// `[height, width]` of every image in pixels.
    pub image_shape: [usize; 2],
    /// Screen pixels per image pixel (at least 1).
    pub scale: u32,
    /// The rows, top to bottom.
    pub rows: Vec<ImageRow>,
}

/// Space between tiles, the frame width, the caption band and the margins, in screen pixels.
const GAP: u32 = 6;
const FRAME: u32 = 2;
const CAPTION: u32 = 16;
const MARGIN: u32 = 12;
const LABEL_WIDTH: u32 = 90;

impl ImageGrid {
    fn check(&self) -> Result<(), PlotError> {
        let [h, w] = self.image_shape;
        if h == 0 || w == 0 || self.scale == 0 {
            return Err(PlotError::Invalid(format!(
                "images of {h} x {w} pixels at scale {}",
                self.scale
            )));
        }
        if self.rows.iter().all(|r| r.tiles.is_empty()) {
            return Err(PlotError::Invalid("an image grid needs an image".into()));
        }
        for (r, row) in self.rows.iter().enumerate() {
            for (t, tile) in row.tiles.iter().enumerate() {
                if tile.pixels.len() != h * w {
                    return Err(PlotError::Invalid(format!(
                        "row {r}, image {t}: {} pixels for a {h} x {w} image",
                        tile.pixels.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Width and height of one tile (frame included) in screen pixels.
    fn tile_size(&self) -> (u32, u32) {
        let [h, w] = self.image_shape;
        (
            w as u32 * self.scale + 2 * FRAME,
            h as u32 * self.scale + 2 * FRAME,
        )
    }

    fn header_height(&self) -> u32 {
        if self.subtitle.is_empty() {
            36
        } else {
            58
        }
    }

    /// The size of the whole picture in screen pixels.
    pub fn size(&self) -> (u32, u32) {
        let (tw, th) = self.tile_size();
        let columns = self.rows.iter().map(|r| r.tiles.len()).max().unwrap_or(0) as u32;
        let rows = self.rows.len() as u32;
        let width = 2 * MARGIN + LABEL_WIDTH + columns * (tw + GAP);
        let height = self.header_height() + MARGIN + rows * (th + CAPTION + GAP);
        (width.max(400), height)
    }

    /// Writes the grid to `path` (`.png` or `.svg`).
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        self.check()?;
        register_font();
        let name = path.display().to_string();
        let size = self.size();
        save_drawing(self, path, &name, size)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let (width, _) = self.size();
        let centred = |size: f64| {
            ("sans-serif", size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top))
        };
        root.draw(&Text::new(
            self.title.clone(),
            (width as i32 / 2, 8),
            centred(20.0),
        ))
        .map_err(err)?;
        if !self.subtitle.is_empty() {
            root.draw(&Text::new(
                self.subtitle.clone(),
                (width as i32 / 2, 34),
                centred(14.0),
            ))
            .map_err(err)?;
        }
        let [_, w] = self.image_shape;
        let s = self.scale as i32;
        let (tw, th) = self.tile_size();
        for (r, row) in self.rows.iter().enumerate() {
            let top = (self.header_height() + r as u32 * (th + CAPTION + GAP)) as i32;
            let label_style = ("sans-serif", 14.0)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(
                row.label.clone(),
                (MARGIN as i32, top + th as i32 / 2),
                label_style,
            ))
            .map_err(err)?;
            for (t, tile) in row.tiles.iter().enumerate() {
                let left = (MARGIN + LABEL_WIDTH + t as u32 * (tw + GAP)) as i32;
                let color = RGBColor(tile.color.0, tile.color.1, tile.color.2);
                root.draw(&Rectangle::new(
                    [(left, top), (left + tw as i32, top + th as i32)],
                    color.filled(),
                ))
                .map_err(err)?;
                let (x0, y0) = (left + FRAME as i32, top + FRAME as i32);
                for (i, &v) in tile.pixels.iter().enumerate() {
                    let level = (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8;
                    let (py, px) = ((i / w) as i32, (i % w) as i32);
                    let corner = (x0 + px * s, y0 + py * s);
                    root.draw(&Rectangle::new(
                        [corner, (corner.0 + s, corner.1 + s)],
                        RGBColor(level, level, level).filled(),
                    ))
                    .map_err(err)?;
                }
                if !tile.caption.is_empty() {
                    let style = ("sans-serif", 13.0)
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Center, VPos::Top));
                    root.draw(&Text::new(
                        tile.caption.clone(),
                        (left + tw as i32 / 2, top + th as i32 + 2),
                        style,
                    ))
                    .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

impl Drawing for ImageGrid {
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        self.draw(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PALETTE;

    #[test]
    fn grids_draw_and_bad_tiles_are_errors() {
        let dir = std::env::temp_dir().join(format!("pfn-plot-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tile = |c: usize| ImageTile {
            pixels: (0..12).map(|i| ((i + c) % 3) as f32 / 2.0).collect(),
            caption: format!("class {c}"),
            color: PALETTE[c],
        };
        let grid = ImageGrid {
            title: "grid".into(),
            subtitle: "two rows".into(),
            image_shape: [3, 4],
            scale: 5,
            rows: vec![
                ImageRow {
                    label: "episode 0".into(),
                    tiles: vec![tile(0), tile(1), tile(2)],
                },
                ImageRow {
                    label: "episode 1".into(),
                    tiles: vec![tile(3)],
                },
            ],
        };
        let (w, h) = grid.size();
        assert!(w >= 400 && h > 2 * (3 * 5 + 4));
        for ext in ["png", "svg"] {
            let p = dir.join(format!("g.{ext}"));
            grid.save(&p).unwrap();
            assert!(std::fs::metadata(&p).unwrap().len() > 500);
        }
        let svg = std::fs::read_to_string(dir.join("g.svg")).unwrap();
        assert!(svg.contains("episode 1") && svg.contains("class 2"));
        let mut bad = grid.clone();
        bad.rows[1].tiles[0].pixels.pop();
        assert!(matches!(
            bad.save(&dir.join("b.png")),
            Err(PlotError::Invalid(_))
        ));
        let empty = ImageGrid {
            rows: vec![],
            ..grid.clone()
        };
        assert!(empty.save(&dir.join("e.png")).is_err());
        assert!(matches!(
            grid.save(&dir.join("g.jpg")),
            Err(PlotError::Extension(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
