#![allow(clippy::unwrap_used)]

use super::*;
use std::path::Path;
use std::sync::Arc;

fn request(body: &[u8]) -> StoredRequest {
    StoredRequest {
        method: "POST".into(),
        path: "/orders".into(),
        query: Some("dry=1".into()),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-trace".into(), "a\"b".into()),
        ],
        body: body.to_vec(),
        claims: None,
    }
}

fn new_job(id: &str, due: i64) -> NewJob {
    NewJob {
        id: id.into(),
        consumer: "erp".into(),
        api: "orders".into(),
        operation: "createOrder".into(),
        request: request(br#"{"sku":"A-1"}"#),
        request_id: format!("req-{id}"),
        idempotency_key: None,
        body_digest: "abc123".into(),
        max_attempts: 5,
        next_attempt_at: due,
        created_at: due,
    }
}

fn answer() -> StoredAnswer {
    StoredAnswer {
        status: 201,
        headers: vec![("location".into(), "/orders/7".into())],
        body: b"{\"id\":7}".to_vec(),
    }
}

fn open(dir: &Path) -> SqliteJobStore {
    SqliteJobStore::open(&dir.join("propylon.db")).unwrap()
}

/// The jobs a claim took (most tests look only at those, not at the next due time).
async fn claim(store: &SqliteJobStore, now: i64, lease_ms: i64, limit: usize) -> Vec<Job> {
    store.claim_due(now, lease_ms, limit).await.unwrap().jobs
}

async fn inserted(store: &SqliteJobStore, job: NewJob) {
    assert!(matches!(
        store.insert(job).await.unwrap(),
        InsertOutcome::Inserted
    ));
}

#[tokio::test]
async fn insert_get_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut job = new_job("j1", 1_000);
    job.idempotency_key = Some("k1".into());
    job.request.body = vec![0, 159, 146, 150, 255]; // not UTF-8
    job.request.claims = Some(serde_json::json!({"sub": "alice", "scope": "orders:write"}));
    inserted(&store, job.clone()).await;
    let got = store.get("j1").await.unwrap().unwrap();
    assert_eq!(got.id, "j1");
    assert_eq!(got.consumer, "erp");
    assert_eq!(got.api, "orders");
    assert_eq!(got.operation, "createOrder");
    assert_eq!(got.status, JobStatus::Queued);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.max_attempts, 5);
    assert_eq!(got.next_attempt_at, 1_000);
    assert_eq!(got.created_at, 1_000);
    assert_eq!(got.updated_at, 1_000);
    assert_eq!(got.request, job.request);
    assert_eq!(got.request_id, "req-j1");
    assert_eq!(got.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(got.body_digest, "abc123");
    assert!(got.result.is_none());
    assert!(got.lease_until.is_none());
    assert!(got.last_error.is_none());
    assert!(store.get("nope").await.unwrap().is_none());
    // Through a store object, as the gateway holds it.
    let shared: Arc<dyn JobStore> = Arc::new(store);
    assert!(shared.get("j1").await.unwrap().is_some());
}

#[tokio::test]
async fn idempotency_key_returns_the_existing_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut first = new_job("j1", 1_000);
    first.idempotency_key = Some("same".into());
    inserted(&store, first).await;

    let mut again = new_job("j2", 2_000);
    again.idempotency_key = Some("same".into());
    again.body_digest = "different".into();
    match store.insert(again).await.unwrap() {
        InsertOutcome::Existing(job) => {
            assert_eq!(job.id, "j1");
            assert_eq!(job.body_digest, "abc123");
        }
        InsertOutcome::Inserted => panic!("a second job for the same key"),
    }
    assert!(store.get("j2").await.unwrap().is_none());

    // Another consumer may use the same key; no key never conflicts.
    let mut other = new_job("j3", 1_000);
    other.consumer = "crm".into();
    other.idempotency_key = Some("same".into());
    inserted(&store, other).await;
    inserted(&store, new_job("j4", 1_000)).await;
    inserted(&store, new_job("j5", 1_000)).await;

    // Concurrent submissions with one key (they land in one batch): exactly one job.
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut job = new_job(&format!("c{i}"), 1_000);
            job.idempotency_key = Some("burst".into());
            store.insert(job).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), InsertOutcome::Inserted) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

#[tokio::test]
async fn duplicate_id_is_an_error_and_does_not_spoil_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    inserted(&store, new_job("dup", 1_000)).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = Arc::clone(&store);
        let id = if i == 5 {
            "dup".to_string()
        } else {
            format!("ok{i}")
        };
        tasks.push(tokio::spawn(async move {
            store.insert(new_job(&id, 1_000)).await
        }));
    }
    let mut errors = 0;
    for task in tasks {
        if let Err(e) = task.await.unwrap() {
            assert!(e.to_string().contains("inserting job dup"), "{e}");
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    assert_eq!(store.counts(0).await.unwrap().queued, 10);
}

#[tokio::test]
async fn claim_due_respects_due_time_status_and_sets_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    inserted(&store, new_job("late", 5_000)).await;
    inserted(&store, new_job("b", 2_000)).await;
    inserted(&store, new_job("a", 1_000)).await;
    inserted(&store, new_job("c", 3_000)).await;
    inserted(&store, new_job("done", 500)).await;
    inserted(&store, new_job("gone", 500)).await;
    // Take "done" and "gone" out of the queue.
    let first = claim(&store, 600, 10_000, 10).await;
    let ids: Vec<_> = first.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    store.succeed("done", 1, answer(), 700).await.unwrap();
    store.kill("gone", 1, "bad", 700).await.unwrap();

    assert!(claim(&store, 3_000, 10_000, 0).await.is_empty());
    let claimed = claim(&store, 3_000, 10_000, 2).await;
    let ids: Vec<_> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]); // oldest due first, limit respected
    for job in &claimed {
        assert_eq!(job.status, JobStatus::InFlight);
        assert_eq!(job.lease_until, Some(13_000));
        assert_eq!(job.request, request(br#"{"sku":"A-1"}"#));
    }
    let stored = store.get("a").await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::InFlight);
    assert_eq!(stored.lease_until, Some(13_000));
    assert_eq!(stored.updated_at, 3_000);
    assert_eq!(stored.attempts, 0);

    // "c" is left; "late" is not due; in-flight ones with a live lease are not taken again.
    let claimed = claim(&store, 3_000, 10_000, 10).await;
    let ids: Vec<_> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["c"]);
    assert!(claim(&store, 4_999, 10_000, 10).await.is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    inserted(&store, new_job("a", 1_000)).await;
    inserted(&store, new_job("b", 1_500)).await;
    assert_eq!(claim(&store, 1_000, 1_000, 10).await.len(), 1); // a, lease to 2000
    assert!(claim(&store, 1_999, 1_000, 10).await.len() == 1); // b, lease to 2999
    assert!(claim(&store, 1_999, 1_000, 10).await.is_empty());
    let again = claim(&store, 2_000, 1_000, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "a");
    assert_eq!(again[0].lease_until, Some(3_000));
    // Expired leases and queued jobs are merged by due time.
    inserted(&store, new_job("c", 2_500)).await;
    let ids: Vec<_> = claim(&store, 5_000, 1_000, 10)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, ["c", "b", "a"]); // c due 2500, b lease 2999, a lease 3000
}

#[tokio::test]
async fn a_job_is_found_by_its_consumer_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut job = new_job("k", 1_000);
    job.idempotency_key = Some("order-7".into());
    inserted(&store, job).await;
    assert_eq!(
        store
            .find_by_key("erp", "order-7")
            .await
            .unwrap()
            .unwrap()
            .id,
        "k"
    );
    assert!(store
        .find_by_key("other", "order-7")
        .await
        .unwrap()
        .is_none());
    assert!(store.find_by_key("erp", "order-8").await.unwrap().is_none());
}

#[tokio::test]
async fn reopening_releases_the_leases_of_a_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    inserted(&store, new_job("a", 1_000)).await;
    assert_eq!(claim(&store, 1_000, 60_000, 10).await.len(), 1);
    drop(store);
    // As after a `kill -9`: the lease would run until 61000, but the job is due again at once.
    let store = open(dir.path());
    let job = store.get("a").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.lease_until, None);
    assert_eq!(claim(&store, 1_001, 60_000, 10).await.len(), 1);
}

#[tokio::test]
async fn succeed_retry_later_and_kill_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for id in ["s", "r", "k"] {
        inserted(&store, new_job(id, 1_000)).await;
    }
    assert_eq!(claim(&store, 1_000, 30_000, 10).await.len(), 3);

    store.succeed("s", 1, answer(), 1_100).await.unwrap();
    let s = store.get("s").await.unwrap().unwrap();
    assert_eq!(s.status, JobStatus::Succeeded);
    assert_eq!(s.attempts, 1);
    assert_eq!(s.result, Some(answer()));
    assert_eq!(s.lease_until, None);
    assert_eq!(s.updated_at, 1_100);

    store
        .retry_later("r", 1, 9_000, "503 from backend", 1_200)
        .await
        .unwrap();
    let r = store.get("r").await.unwrap().unwrap();
    assert_eq!(r.status, JobStatus::Queued);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.next_attempt_at, 9_000);
    assert_eq!(r.last_error.as_deref(), Some("503 from backend"));
    assert_eq!(r.lease_until, None);
    assert!(claim(&store, 8_999, 1_000, 10).await.is_empty());
    assert_eq!(claim(&store, 9_000, 1_000, 10).await[0].id, "r");

    store.kill("k", 5, "gave up", 1_300).await.unwrap();
    let k = store.get("k").await.unwrap().unwrap();
    assert_eq!(k.status, JobStatus::Dead);
    assert_eq!(k.attempts, 5);
    assert_eq!(k.last_error.as_deref(), Some("gave up"));
    assert_eq!(k.updated_at, 1_300);

    // A late retry or kill from a worker whose lease lapsed does not undo a success.
    store
        .retry_later("s", 2, 9_999, "late", 1_400)
        .await
        .unwrap();
    store.kill("s", 2, "late", 1_400).await.unwrap();
    assert_eq!(
        store.get("s").await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    // Unknown jobs are reported.
    assert!(matches!(
        store.succeed("nope", 1, answer(), 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.retry_later("nope", 1, 1, "x", 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.kill("nope", 1, "x", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn list_by_status_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        inserted(&store, new_job(id, 1_000 + i as i64)).await;
    }
    store.claim_due(2_000, 1_000, 10).await.unwrap();
    store.kill("a", 3, "x", 3_000).await.unwrap();
    store.kill("c", 3, "x", 3_500).await.unwrap();
    store.retry_later("b", 1, 9_000, "x", 3_000).await.unwrap();

    let dead: Vec<_> = store
        .list(Some(JobStatus::Dead), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(dead, ["c", "a"]);
    assert_eq!(store.list(Some(JobStatus::Dead), 1).await.unwrap().len(), 1);
    let all: Vec<_> = store
        .list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all, ["d", "c", "b", "a"]);
    assert_eq!(
        store.list(Some(JobStatus::InFlight), 10).await.unwrap()[0].id,
        "d"
    );
    assert!(store
        .list(Some(JobStatus::Succeeded), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn requeue_and_requeue_dead() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for id in ["a", "b", "c", "f"] {
        inserted(&store, new_job(id, 1_000)).await;
    }
    store.claim_due(1_000, 60_000, 10).await.unwrap();
    store.kill("a", 5, "boom", 2_000).await.unwrap();
    store.kill("b", 5, "boom", 2_000).await.unwrap();

    // In flight: not requeued. Unknown: false.
    assert!(!store.requeue("c", 3_000).await.unwrap());
    assert!(!store.requeue("nope", 3_000).await.unwrap());

    assert!(store.requeue("a", 3_000).await.unwrap());
    let a = store.get("a").await.unwrap().unwrap();
    assert_eq!(a.status, JobStatus::Queued);
    assert_eq!(a.attempts, 0);
    assert_eq!(a.next_attempt_at, 3_000);
    assert_eq!(a.lease_until, None);
    assert_eq!(a.last_error.as_deref(), Some("boom"));

    store.succeed("f", 1, answer(), 2_500).await.unwrap();
    assert_eq!(store.requeue_dead(4_000).await.unwrap(), 1); // b only
    let b = store.get("b").await.unwrap().unwrap();
    assert_eq!(
        (b.status, b.attempts, b.next_attempt_at),
        (JobStatus::Queued, 0, 4_000)
    );
    assert_eq!(store.requeue_dead(4_000).await.unwrap(), 0);
    // A succeeded job may be replayed too; its old result goes.
    assert!(store.requeue("f", 5_000).await.unwrap());
    assert!(store.get("f").await.unwrap().unwrap().result.is_none());
    let ids: Vec<_> = claim(&store, 5_000, 1_000, 10)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, ["a", "b", "f"]);
}

#[tokio::test]
async fn delete_removes_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut job = new_job("a", 1_000);
    job.idempotency_key = Some("k".into());
    inserted(&store, job).await;
    assert!(store.delete("a").await.unwrap());
    assert!(!store.delete("a").await.unwrap());
    assert!(store.get("a").await.unwrap().is_none());
    // The key is free again.
    let mut job = new_job("a2", 1_000);
    job.idempotency_key = Some("k".into());
    inserted(&store, job).await;
}

#[tokio::test]
async fn counts_with_oldest_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let empty = store.counts(0).await.unwrap();
    assert_eq!(
        (empty.queued, empty.in_flight, empty.succeeded, empty.dead),
        (0, 0, 0, 0)
    );
    assert_eq!(empty.oldest_due, None);
    for (id, due) in [("a", 100), ("b", 200), ("c", 300), ("d", 400), ("e", 5_000)] {
        inserted(&store, new_job(id, due)).await;
    }
    let claimed = claim(&store, 250, 1_000, 2).await; // a, b
    assert_eq!(claimed.len(), 2);
    store.succeed("a", 1, answer(), 260).await.unwrap();
    store.claim_due(300, 1_000, 1).await.unwrap(); // c
    store.kill("c", 1, "x", 310).await.unwrap();
    let counts = store.counts(1_000).await.unwrap();
    assert_eq!(counts.queued, 2); // d, e
    assert_eq!(counts.in_flight, 1); // b
    assert_eq!(counts.succeeded, 1);
    assert_eq!(counts.dead, 1);
    assert_eq!(counts.oldest_due, Some(400));
    assert_eq!(store.counts(399).await.unwrap().oldest_due, None);
}

#[tokio::test]
async fn purge_succeeded_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for id in ["old", "new", "dead", "queued"] {
        inserted(&store, new_job(id, 100)).await;
    }
    store.claim_due(100, 1_000, 3).await.unwrap();
    store.succeed("old", 1, answer(), 1_000).await.unwrap();
    store.succeed("new", 1, answer(), 5_000).await.unwrap();
    store.kill("dead", 1, "x", 500).await.unwrap();
    assert_eq!(store.purge_succeeded(5_000).await.unwrap(), 1);
    assert!(store.get("old").await.unwrap().is_none());
    assert!(store.get("new").await.unwrap().is_some());
    assert!(store.get("dead").await.unwrap().is_some());
    assert!(store.get("queued").await.unwrap().is_some());
    assert_eq!(store.purge_succeeded(5_000).await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    inserted(&store, new_job("a", 1_000)).await;
    drop(store);
    let store = open(dir.path());
    let job = store.get("a").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.request, request(br#"{"sku":"A-1"}"#));
}

#[tokio::test]
async fn shares_the_file_with_the_quota_store() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = crate::store::EmbeddedStore::open(dir.path()).unwrap();
    let store = SqliteJobStore::open(&quotas.path).unwrap();
    inserted(&store, new_job("a", 1_000)).await;
    quotas
        .save_quota_counters(&[("alice".into(), 1, 2)])
        .unwrap();
    assert_eq!(quotas.load_quota_counters().unwrap().len(), 1);
    assert!(store.get("a").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut n = t;
            while n < 2_000 {
                let mut job = new_job(&format!("job-{n}"), 1_000);
                if n % 2 == 0 {
                    job.idempotency_key = Some(format!("key-{n}"));
                }
                assert!(matches!(
                    store.insert(job).await.unwrap(),
                    InsertOutcome::Inserted
                ));
                n += 64;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.counts(0).await.unwrap().queued, 2_000);
    let all = store.list(None, 10_000).await.unwrap();
    assert_eq!(all.len(), 2_000);
    let ids: std::collections::HashSet<_> = all.into_iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 2_000);
}

/// `cargo test -p propylon --release accept_rate -- --ignored --nocapture`
#[test]
#[ignore]
fn accept_rate() {
    const JOBS: usize = 20_000;
    const TASKS: usize = 256;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // On the target disk, not a tmpfs: the figure must include real fsyncs.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let store = Arc::new(open(dir.path()));
    let body = vec![b'x'; 1024];
    let started = std::time::Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = Arc::clone(&store);
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = t;
                while n < JOBS {
                    let mut job = new_job(&format!("bench-{n:08}"), 1_000);
                    job.request.body = body.clone();
                    job.idempotency_key = Some(format!("idem-{n}"));
                    let at = std::time::Instant::now();
                    store.insert(job).await.unwrap();
                    latencies.push(at.elapsed());
                    n += TASKS;
                }
                latencies
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "accept_rate: {JOBS} jobs (1 KiB body) from {TASKS} tasks in {:.2?}: {:.0} jobs/s \
             (insert latency p50 {:.2?}, p99 {:.2?})",
            elapsed,
            JOBS as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
        );
        assert_eq!(store.counts(0).await.unwrap().queued, JOBS as u64);
    });
}

#[test]
fn claiming_due_jobs_does_not_compile_its_queries_again() {
    use rusqlite::StatementStatus;
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("propylon.db")).unwrap();
    sqlite::configure(&conn).unwrap();
    conn.execute_batch(sqlite::SCHEMA).unwrap();
    // The limit follows the free replay slots, so it changes from one claim to the next.
    for (now, limit) in [(1_000, 32), (2_000, 7), (3_000, 32), (4_000, 1)] {
        assert!(sqlite::claim_due(&conn, now, 60_000, limit)
            .unwrap()
            .jobs
            .is_empty());
    }
    for sql in [&*sqlite::LEASE_ENDED, &*sqlite::QUEUED_DUE] {
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
        assert_eq!(stmt.get_status(StatementStatus::Run), 4, "{sql}");
    }
}

#[tokio::test]
async fn a_claim_says_when_the_next_job_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.claim_due(1_000, 60_000, 10).await.unwrap().next_due,
        None
    );
    inserted(&store, new_job("soon", 2_000)).await;
    inserted(&store, new_job("later", 9_000)).await;
    let claimed = store.claim_due(1_000, 60_000, 10).await.unwrap();
    assert!(claimed.jobs.is_empty());
    assert_eq!(claimed.next_due, Some(2_000));
    // Claimed: its lease (2,000 + 5,000) now comes before "later".
    let claimed = store.claim_due(2_000, 5_000, 10).await.unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    assert_eq!(claimed.next_due, Some(7_000));
    store
        .retry_later("soon", 1, 3_000, "backend down", 2_100)
        .await
        .unwrap();
    let claimed = store.claim_due(2_200, 5_000, 10).await.unwrap();
    assert!(claimed.jobs.is_empty());
    assert_eq!(claimed.next_due, Some(3_000));
    store.succeed("soon", 2, answer(), 3_100).await.unwrap();
    let claimed = store.claim_due(3_200, 5_000, 10).await.unwrap();
    assert_eq!(claimed.next_due, Some(9_000));
    let claimed = store.claim_due(9_000, 5_000, 10).await.unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    store.kill("later", 1, "gone", 9_100).await.unwrap();
    // Finished and dead jobs are never due.
    let claimed = store.claim_due(9_200, 5_000, 10).await.unwrap();
    assert_eq!(claimed.next_due, None);
}
