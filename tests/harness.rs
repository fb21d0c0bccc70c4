mod common;

#[tokio::test]
async fn test_database_is_created_and_usable() {
    let db = common::TestDb::new("harness").await;
    db.exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);")
        .await;
    let client = db.client().await;
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name);
}
