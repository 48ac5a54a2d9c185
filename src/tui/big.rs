//! Digits five rows tall, so the amount reads from two metres away.

/// The rows of one glyph; unknown characters are a blank column.
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' => ["████", "█  █", "█  █", "█  █", "████"],
        '1' => ["  █ ", " ██ ", "  █ ", "  █ ", " ███"],
        '2' => ["████", "   █", "████", "█   ", "████"],
        '3' => ["████", "   █", " ███", "   █", "████"],
        '4' => ["█  █", "█  █", "████", "   █", "   █"],
        '5' => ["████", "█   ", "████", "   █", "████"],
        '6' => ["████", "█   ", "████", "█  █", "████"],
        '7' => ["████", "   █", "  █ ", " █  ", " █  "],
        '8' => ["████", "█  █", "████", "█  █", "████"],
        '9' => ["████", "█  █", "████", "   █", "████"],
        '.' => ["  ", "  ", "  ", "  ", "██"],
        '¥' => ["█   █", " █ █ ", "█████", "  █  ", "  █  "],
        _ => [" ", " ", " ", " ", " "],
    }
}

/// `text` as five lines of block glyphs, one column apart.
pub fn lines(text: &str) -> [String; 5] {
    let mut rows: [String; 5] = Default::default();
    for (i, c) in text.chars().enumerate() {
        for (row, part) in rows.iter_mut().zip(glyph(c)) {
            if i > 0 {
                row.push(' ');
            }
            row.push_str(part);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_amount() {
        let rows = lines("¥1.05");
        assert_eq!(rows[0], "█   █   █     ████ ████");
        assert_eq!(rows[4], "  █    ███ ██ ████ ████");
    }
}
