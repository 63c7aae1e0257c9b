//! CSV input: parsing, every error case with its exact location, and train/test matching.

use std::path::PathBuf;

use pfn_infer::{load_predict_data, match_train_test, parse_csv, read_csv, TableError};

fn err(text: &str) -> String {
    let e = parse_csv(text, "train.csv").unwrap_err().to_string();
    assert!(!e.contains('\n'), "multi-line error: {e}");
    assert!(
        e.starts_with("train.csv: "),
        "error does not name the file: {e}"
    );
    e
}

#[test]
fn parses_numbers_quotes_crlf_bom_and_trailing_blank_lines() {
    let text = "\u{feff}\"x 1\",x2,y\r\n1, 2.5 ,-3e2\r\n\"4\",5,6\r\n\r\n\n";
    let t = parse_csv(text, "t.csv").unwrap();
    assert_eq!(t.columns, vec!["x 1", "x2", "y"]);
    assert_eq!(
        t.values,
        vec![vec![1.0, 4.0], vec![2.5, 5.0], vec![-300.0, 6.0]]
    );
    assert_eq!(t.lines, vec![2, 3]);
    assert_eq!(t.n_rows(), 2);
    assert_eq!(t.column("x2"), Some(&[2.5, 5.0][..]));
}

#[test]
fn quoted_header_with_comma_and_escaped_quote() {
    let t = parse_csv("\"a,b\",\"say \"\"hi\"\"\"\n1,2\n", "q.csv").unwrap();
    assert_eq!(t.columns, vec!["a,b", "say \"hi\""]);
}

#[test]
fn missing_value_names_line_row_and_column() {
    let e = err("x1,x2,y\n1,2,3\n4,,6\n");
    assert_eq!(
        e,
        "train.csv: line 3 (data row 2), column 'x2': missing value"
    );
    let e = err("x1,x2,y\n1,2,3\n4,5,6\n7,8,NA\n");
    assert_eq!(
        e,
        "train.csv: line 4 (data row 3), column 'y': missing value (\"NA\")"
    );
}

#[test]
fn non_numeric_cell() {
    let e = err("x1,x2,y\n1,2,3\n4,abc,6\n");
    assert_eq!(
        e,
        "train.csv: line 3 (data row 2), column 'x2': not a number: \"abc\""
    );
}

#[test]
fn non_finite_values() {
    for (cell, line) in [("NaN", 2), ("inf", 2), ("-infinity", 2)] {
        let e = err(&format!("a,b\n{cell},1\n"));
        assert_eq!(
            e,
            format!("train.csv: line {line} (data row 1), column 'a': non-finite value \"{cell}\"")
        );
    }
    // Overflow to infinity is non-finite too.
    let e = err("a,b\n1,1e999\n");
    assert!(e.contains("column 'b': non-finite value \"1e999\""), "{e}");
}

#[test]
fn ragged_rows() {
    let e = err("x1,x2,y\n1,2,3\n4,5\n");
    assert_eq!(
        e,
        "train.csv: line 3 (data row 2) has 2 fields but the header has 3 (missing 'y')"
    );
    let e = err("x1,x2,y\n1,2,3,4\n");
    assert_eq!(
        e,
        "train.csv: line 2 (data row 1) has 4 fields but the header has 3 (extra fields after 'y')"
    );
}

#[test]
fn blank_line_inside_the_data() {
    let e = err("a,b\n1,2\n\n3,4\n");
    assert_eq!(e, "train.csv: line 3 (data row 2) is blank");
}

#[test]
fn line_numbers_count_lines_inside_quoted_fields() {
    // The header spans lines 1-2, so the bad row is on line 4.
    let e = err("\"a\nb\",c\n1,2\n3,x\n");
    assert_eq!(
        e,
        "train.csv: line 4 (data row 2), column 'c': not a number: \"x\""
    );
}

#[test]
fn empty_file_and_header_only() {
    assert_eq!(
        err(""),
        "train.csv: the file is empty (expected a header line of column names)"
    );
    assert_eq!(
        err("\n\n  \n"),
        "train.csv: the file is empty (expected a header line of column names)"
    );
    assert_eq!(err("x,y\n"), "train.csv: no data rows after the header");
    assert_eq!(err("x,y"), "train.csv: no data rows after the header");
}

#[test]
fn bad_headers() {
    assert_eq!(
        err("x,,y\n1,2,3\n"),
        "train.csv: line 1: column 2 has an empty name"
    );
    assert_eq!(
        err("x,y,x\n1,2,3\n"),
        "train.csv: line 1: column name 'x' appears more than once"
    );
    assert_eq!(
        err("x,\"y\n1\n"),
        "train.csv: line 1: unterminated quoted field"
    );
}

fn tables(train: &str, test: &str) -> (pfn_infer::Table, pfn_infer::Table) {
    (
        parse_csv(train, "train.csv").unwrap(),
        parse_csv(test, "test.csv").unwrap(),
    )
}

#[test]
fn default_target_is_last_column_and_test_without_target() {
    let (tr, te) = tables("a,b,y\n1,2,3\n4,5,6\n", "a,b\n7,8\n9,10\n11,12\n");
    let d = match_train_test(&tr, &te, None).unwrap();
    assert_eq!(d.feature_names, vec!["a", "b"]);
    assert_eq!(d.target_name, "y");
    assert_eq!(d.train_x, vec![1.0, 2.0, 4.0, 5.0]);
    assert_eq!(d.train_y, vec![3.0, 6.0]);
    assert_eq!(d.test_x, vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_eq!(d.test_y, None);
    assert_eq!((d.n_train(), d.n_test(), d.n_features()), (2, 3, 2));
    assert_eq!(d.test_row(1), &[9.0, 10.0]);
    assert_eq!(d.train_row(1), &[4.0, 5.0]);
}

#[test]
fn named_target_and_reordered_test_columns_with_target() {
    let (tr, te) = tables("y,a,b\n3,1,2\n", "b,y,a\n8,30,7\n");
    let d = match_train_test(&tr, &te, Some("y")).unwrap();
    assert_eq!(d.feature_names, vec!["a", "b"]);
    assert_eq!(d.train_x, vec![1.0, 2.0]);
    assert_eq!(d.train_y, vec![3.0]);
    assert_eq!(d.test_x, vec![7.0, 8.0]);
    assert_eq!(d.test_y, Some(vec![30.0]));
}

#[test]
fn unknown_target_lists_the_columns() {
    let (tr, te) = tables("a,b,y\n1,2,3\n", "a,b\n1,2\n");
    let e = match_train_test(&tr, &te, Some("z"))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "train.csv: no target column 'z'; columns are: a, b, y");
}

#[test]
fn train_and_test_columns_differ() {
    let (tr, te) = tables("a,b,y\n1,2,3\n", "a,c\n1,2\n");
    let e = match_train_test(&tr, &te, None).unwrap_err().to_string();
    assert_eq!(
        e,
        "test.csv: feature columns differ from train.csv: missing 'b'; unexpected 'c'"
    );
    let (tr, te) = tables("a,b,y\n1,2,3\n", "a\n1\n");
    let e = match_train_test(&tr, &te, None).unwrap_err().to_string();
    assert_eq!(
        e,
        "test.csv: feature columns differ from train.csv: missing 'b'"
    );
}

#[test]
fn target_only_training_file_has_no_features() {
    let (tr, te) = tables("y\n1\n", "y\n2\n");
    let e = match_train_test(&tr, &te, None).unwrap_err().to_string();
    assert_eq!(e, "train.csv: no feature columns besides the target 'y'");
}

fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pfn-infer-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn files_on_disk_and_io_errors() {
    let tr = scratch("tr.csv", b"a,y\n0.5,1\n0.25,2\n");
    let te = scratch("te.csv", b"a\n0.75\n");
    let d = load_predict_data(&tr, &te, None).unwrap();
    assert_eq!(d.train_y, vec![1.0, 2.0]);
    assert_eq!(d.test_x, vec![0.75]);

    let missing = tr.with_file_name("does-not-exist.csv");
    let e = read_csv(&missing).unwrap_err();
    assert!(matches!(e, TableError::Io { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'));

    let bad = scratch("bad.csv", b"a,y\n1,2\n\xff,3\n");
    let e = read_csv(&bad).unwrap_err().to_string();
    assert!(e.ends_with(": line 3: not UTF-8 text"), "{e}");
    // Errors from a file name the file as given.
    let bad2 = scratch("bad2.csv", b"a,y\n1,x\n");
    let e = read_csv(&bad2).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: line 2 (data row 1), column 'y': not a number: \"x\"",
            bad2.display()
        )
    );
    std::fs::remove_dir_all(tr.parent().unwrap()).unwrap();
}

#[test]
fn semicolon_and_tab_separated_files_get_a_delimiter_hint() {
    let e = parse_csv("a;b;y\n1;2;3\n", "s.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("s.csv: ") && e.contains("semicolon") && e.contains("tr ';' ','"),
        "{e}"
    );
    let e = parse_csv("a\tb\ty\n1\t2\t3\n", "t.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("tab") && e.contains("tr '\\t' ','"), "{e}");
    // A comma-separated file with one column is not affected.
    assert!(parse_csv("y\n1\n", "one.csv").is_ok());
}

#[test]
fn quoted_data_cells_with_commas_and_duplicate_names_after_trimming() {
    // A quoted cell may hold the separator: it stays one cell. A number written with a decimal
    // comma or a thousands separator is not read as a number (no locale guessing): the error names
    // the cell.
    let t = parse_csv("\"a,b\",y\n\" 1.5 \",2\n", "q.csv").unwrap();
    assert_eq!(t.values, vec![vec![1.5], vec![2.0]]);
    let e = err("x,y\n\"1,5\",2\n");
    assert!(
        e.starts_with("train.csv: line 2 (data row 1), column 'x': not a number: \"1,5\""),
        "{e}"
    );
    // Names are compared after trimming spaces, so ' x' repeats 'x'.
    assert_eq!(
        err("x, x ,y\n1,2,3\n"),
        "train.csv: line 1: column name 'x' appears more than once"
    );
    // A quoted name and a bare one with the same text are the same name.
    assert_eq!(
        err("\"x\",x\n1,2\n"),
        "train.csv: line 1: column name 'x' appears more than once"
    );
}

fn text_pair(train: &str, test: &str) -> (pfn_infer::TextTable, pfn_infer::TextTable) {
    (
        pfn_infer::parse_csv_text(train, "train.csv").unwrap(),
        pfn_infer::parse_csv_text(test, "test.csv").unwrap(),
    )
}

fn classes() -> pfn_infer::ReadOptions<'static> {
    pfn_infer::ReadOptions {
        target_kind: pfn_infer::TargetKind::Classes,
        ..Default::default()
    }
}

#[test]
fn class_labels_are_read_as_text_and_encoded_in_sorted_order() {
    let (tr, te) = text_pair(
        "x1,x2,species\n1,2,versicolor\n3,4,setosa\n5,6, versicolor \n",
        "species,x2,x1\nsetosa,1,1\nvirginica,2,2\n",
    );
    let d = pfn_infer::match_text_tables(&tr, &te, &classes()).unwrap();
    let c = d.classes.as_ref().unwrap();
    assert_eq!(c.names(), ["setosa", "versicolor"]);
    assert_eq!(d.train_y, vec![1.0, 0.0, 1.0]);
    assert_eq!(d.train_x, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(d.test_x, vec![1.0, 1.0, 2.0, 2.0]);
    assert_eq!(d.test_y, None);
    assert_eq!(
        d.test_labels,
        Some(vec![("setosa".into(), Some(0)), ("virginica".into(), None)])
    );
    // Integer labels sort numerically; the numeric reading is unchanged for regression.
    let (tr, te) = text_pair("a,y\n1,10\n2,9\n3,10\n", "a,y\n1,9.0\n");
    let d = pfn_infer::match_text_tables(&tr, &te, &classes()).unwrap();
    assert_eq!(d.classes.as_ref().unwrap().names(), ["9", "10"]);
    assert_eq!(d.train_y, vec![1.0, 0.0, 1.0]);
    assert_eq!(d.test_labels, Some(vec![("9.0".into(), Some(0))]));
    let d = pfn_infer::match_text_tables(&tr, &te, &Default::default()).unwrap();
    assert_eq!(d.train_y, vec![10.0, 9.0, 10.0]);
    assert_eq!(d.test_y, Some(vec![9.0]));
    assert!(d.classes.is_none());
}

#[test]
fn class_label_and_feature_errors_name_file_line_row_and_column() {
    let err = |train: &str, test: &str, options: &pfn_infer::ReadOptions| {
        let (tr, te) = text_pair(train, test);
        pfn_infer::match_text_tables(&tr, &te, options)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("a,y\n1,u\n2,NA\n", "a\n1\n", &classes()),
        "train.csv: line 3 (data row 2), column 'y': missing value (\"NA\")"
    );
    assert_eq!(
        err("a,y\n1,u\n2,v\n", "a,y\n1,u\n\"2\",\n", &classes()),
        "test.csv: line 3 (data row 2), column 'y': missing value"
    );
    // Features stay numeric.
    assert_eq!(
        err("a,y\n1,u\nbig,v\n", "a\n1\n", &classes()),
        "train.csv: line 3 (data row 2), column 'a': not a number: \"big\""
    );
    // Regression targets stay numeric.
    assert_eq!(
        err("a,y\n1,u\n", "a\n1\n", &Default::default()),
        "train.csv: line 2 (data row 1), column 'y': not a number: \"u\""
    );
    assert_eq!(
        err("a,b,y\n1,,u\n", "a,b\n1,2\n", &classes()),
        "train.csv: line 2 (data row 1), column 'b': missing value"
    );
}

#[test]
fn missing_features_read_as_nan_and_impute_with_context_means() {
    let options = pfn_infer::ReadOptions {
        target_kind: pfn_infer::TargetKind::Classes,
        allow_missing_features: true,
        ..Default::default()
    };
    let (tr, te) = text_pair("a,b,y\n1,,u\n3,4,v\nNA,8,u\n", "a,b\n?,1\n");
    let mut d = pfn_infer::match_text_tables(&tr, &te, &options).unwrap();
    assert_eq!(pfn_infer::count_missing(&d.train_x), 2);
    let f = d.n_features();
    assert_eq!(
        pfn_infer::impute_with_context_means(&mut d.train_x, &mut d.test_x, f),
        3
    );
    assert_eq!(d.train_x, vec![1.0, 6.0, 3.0, 4.0, 2.0, 8.0]);
    assert_eq!(d.test_x, vec![2.0, 1.0]);
}
