//! The README documents the simulator's scenario tables and bill; keep them in step.

#[test]
fn the_readme_lists_every_simulator_scenario() {
    let readme = include_str!("../README.md");
    for (fee, name, description) in scanpay::simulator::scenario_table() {
        let amount = if *fee > 100_000 {
            "1000.01+".to_string()
        } else {
            scanpay::domain::Fen(*fee).to_string()
        };
        let row = format!("| {amount} | {description} |");
        assert!(
            readme.contains(&row),
            "README.md lacks the row for {name}: {row}"
        );
    }
}

#[test]
fn the_readme_lists_every_refund_scenario() {
    let readme = include_str!("../README.md");
    for (fee, name, description) in scanpay::simulator::refund_scenario_table() {
        let row = format!("| {} | {description} |", scanpay::domain::Fen(*fee));
        assert!(
            readme.contains(&row),
            "README.md lacks the refund row for {name}: {row}"
        );
    }
}

#[test]
fn the_readme_gives_the_bills_headers() {
    let readme = include_str!("../README.md");
    for header in [
        scanpay::simulator::ALL_HEADER,
        scanpay::simulator::SUMMARY_HEADER,
    ] {
        let listed = header.replace(',', ", ");
        assert!(
            readme.replace('\n', " ").contains(&listed),
            "README.md lacks the bill header {header}"
        );
    }
}

#[test]
fn the_readme_documents_every_export_column() {
    let readme = include_str!("../README.md");
    for column in scanpay::journal::EXPORT_COLUMNS {
        assert!(
            readme.contains(&format!("| {column} |")),
            "README.md lacks export column {column}"
        );
    }
}

#[test]
fn the_readme_explains_every_kind_of_discrepancy() {
    let readme = include_str!("../README.md");
    for kind in scanpay::reconcile::Kind::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", kind.as_str())),
            "README.md lacks the discrepancy kind {}",
            kind.as_str()
        );
    }
}
