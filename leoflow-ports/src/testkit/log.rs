//! The `LogStore` conformance suite: append order, offset paging, completion, following
//! a live log until it is closed, and deletion per run.

use std::future::Future;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::fixtures::{at, attempt};
use super::{within, Context};
use crate::log::{LogLine, LogStore, LogStream};
use crate::run::{AttemptId, RunKey};

/// The list of behaviours, written once for both the macro and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __leoflow_log_behaviours {
    ($callback:ident! { $($args:tt)* }) => {
        $crate::$callback! { $($args)* behaviours [
            lines_are_read_back_in_append_order,
            reads_page_by_offset_and_limit,
            a_read_is_complete_only_at_the_end_of_a_closed_log,
            an_unknown_attempt_reads_as_empty,
            tries_of_one_task_have_separate_logs,
            follow_yields_existing_and_later_lines_and_ends_on_close,
            follow_waits_for_an_attempt_that_has_not_logged_yet,
            follow_from_an_offset_skips_earlier_lines,
            follow_of_a_closed_log_ends_after_its_lines,
            delete_for_run_removes_only_that_runs_logs,
        ] }
    };
}

/// One `#[tokio::test]` per log behaviour, in a module `log_conformance`.
///
/// The argument is a future yielding a fresh, empty `Arc<impl LogStore>`; see
/// [`crate::testkit`].
#[macro_export]
macro_rules! log_conformance {
    ($factory:expr) => {
        $crate::__leoflow_log_behaviours!(__leoflow_conformance_tests! {
            plain log log_conformance ($crate::log::LogStore) ($factory)
        });
    };
}

/// Runs every behaviour, each on a fresh log store from `factory`.
pub async fn run_all<F, Fut>(factory: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn LogStore>>,
{
    crate::__leoflow_log_behaviours!(__leoflow_run_all! { plain factory })
}

fn run_key(run_id: &str) -> RunKey {
    RunKey::new("d", run_id)
}

fn a1() -> AttemptId {
    attempt(&run_key("r1"), "a", 1)
}

/// Lines `from..to`, alternating streams, with distinct messages.
fn lines(from: i64, to: i64) -> Vec<LogLine> {
    (from..to)
        .map(|i| LogLine {
            at: at(i),
            stream: if i % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            },
            message: format!("line {i}"),
        })
        .collect()
}

async fn append(port: &dyn LogStore, id: &AttemptId, lines: &[LogLine]) -> Result<(), String> {
    port.append(id, lines).await.ctx("append")
}

async fn read_all(port: &dyn LogStore, id: &AttemptId) -> Result<Vec<LogLine>, String> {
    Ok(port.read(id, 0, 10_000).await.ctx("read")?.lines)
}

/// The next line of a followed log, failing if the stream ends or stalls.
async fn next_line(stream: &mut BoxStream<'static, LogLine>) -> Result<LogLine, String> {
    within("a followed log line", stream.next())
        .await?
        .ok_or_else(|| "the followed log ended early".to_string())
}

/// Everything left in a followed log, failing if it does not end.
async fn rest(stream: BoxStream<'static, LogLine>) -> Result<Vec<LogLine>, String> {
    within("the followed log to end", stream.collect()).await
}

/// The stream neither yields nor ends right now: it is waiting for more.
fn ensure_waiting(stream: &mut BoxStream<'static, LogLine>) -> Result<(), String> {
    match stream.next().now_or_never() {
        None => Ok(()),
        Some(None) => Err("the followed log ended before it was closed".into()),
        Some(Some(line)) => Err(format!("the followed log yielded an unexpected {line:?}")),
    }
}

/// Lines of several appends read back in append order, stream and time included.
pub async fn lines_are_read_back_in_append_order(port: &dyn LogStore) -> Result<(), String> {
    append(port, &a1(), &lines(0, 3)).await?;
    append(port, &a1(), &lines(3, 4)).await?;
    append(port, &a1(), &[]).await?;
    append(port, &a1(), &lines(4, 6)).await?;
    ensure_eq!(read_all(port, &a1()).await?, lines(0, 6), "lines read back");
    Ok(())
}

/// Offsets are line indexes: each page starts where the previous one's `next_offset` said.
pub async fn reads_page_by_offset_and_limit(port: &dyn LogStore) -> Result<(), String> {
    append(port, &a1(), &lines(0, 5)).await?;
    let all = lines(0, 5);
    let mut offset = 0;
    for expected in [&all[0..2], &all[2..4], &all[4..5]] {
        let chunk = port.read(&a1(), offset, 2).await.ctx("read")?;
        ensure_eq!(chunk.lines, expected.to_vec(), "page at offset {offset}");
        ensure_eq!(
            chunk.next_offset,
            offset + expected.len() as u64,
            "next_offset after {offset}"
        );
        offset = chunk.next_offset;
    }
    let past = port.read(&a1(), 5, 2).await.ctx("read")?;
    ensure!(
        past.lines.is_empty(),
        "a read at the end returned {:?}",
        past.lines
    );
    ensure_eq!(past.next_offset, 5, "next_offset of a read at the end");
    let middle = port.read(&a1(), 3, 100).await.ctx("read")?;
    ensure_eq!(middle.lines, all[3..].to_vec(), "read from offset 3");
    Ok(())
}

/// `complete` is set only once the log is closed and the page reaches its end.
pub async fn a_read_is_complete_only_at_the_end_of_a_closed_log(
    port: &dyn LogStore,
) -> Result<(), String> {
    append(port, &a1(), &lines(0, 3)).await?;
    let open = port.read(&a1(), 0, 10).await.ctx("read")?;
    ensure!(!open.complete, "a log that is not closed reads as complete");
    port.close(&a1()).await.ctx("close")?;
    let first = port.read(&a1(), 0, 2).await.ctx("read")?;
    ensure!(
        !first.complete,
        "a page before the end of a closed log reads as complete"
    );
    let last = port.read(&a1(), 2, 2).await.ctx("read")?;
    ensure!(
        last.complete,
        "the last page of a closed log is not complete"
    );
    ensure_eq!(last.next_offset, 3, "next_offset at the end");
    ensure_eq!(last.lines, lines(2, 3), "the last page");
    Ok(())
}

/// An attempt that never logged reads as no lines from offset 0.
pub async fn an_unknown_attempt_reads_as_empty(port: &dyn LogStore) -> Result<(), String> {
    append(port, &a1(), &lines(0, 2)).await?;
    let chunk = port
        .read(&attempt(&run_key("r1"), "zzz", 1), 0, 10)
        .await
        .ctx("read")?;
    ensure!(
        chunk.lines.is_empty(),
        "an unknown attempt has lines {:?}",
        chunk.lines
    );
    ensure_eq!(chunk.next_offset, 0, "next_offset of an unknown attempt");
    Ok(())
}

/// Each try of a task has its own log.
pub async fn tries_of_one_task_have_separate_logs(port: &dyn LogStore) -> Result<(), String> {
    let a2 = attempt(&run_key("r1"), "a", 2);
    append(port, &a1(), &lines(0, 2)).await?;
    append(port, &a2, &lines(10, 11)).await?;
    port.close(&a1()).await.ctx("close")?;
    ensure_eq!(read_all(port, &a1()).await?, lines(0, 2), "try 1");
    ensure_eq!(read_all(port, &a2).await?, lines(10, 11), "try 2");
    let open = port.read(&a2, 0, 10).await.ctx("read")?;
    ensure!(!open.complete, "closing try 1 closed try 2");
    Ok(())
}

/// A follower gets the lines already there, then lines appended later, and ends once the
/// log is closed.
pub async fn follow_yields_existing_and_later_lines_and_ends_on_close(
    port: &dyn LogStore,
) -> Result<(), String> {
    append(port, &a1(), &lines(0, 2)).await?;
    let mut stream = port.follow(&a1(), 0).await.ctx("follow")?;
    ensure_eq!(
        next_line(&mut stream).await?,
        lines(0, 1)[0],
        "first followed line"
    );
    ensure_eq!(
        next_line(&mut stream).await?,
        lines(1, 2)[0],
        "second followed line"
    );
    ensure_waiting(&mut stream)?;
    append(port, &a1(), &lines(2, 3)).await?;
    ensure_eq!(
        next_line(&mut stream).await?,
        lines(2, 3)[0],
        "a line appended later"
    );
    append(port, &a1(), &lines(3, 5)).await?;
    port.close(&a1()).await.ctx("close")?;
    ensure_eq!(
        rest(stream).await?,
        lines(3, 5),
        "lines appended before close"
    );
    Ok(())
}

/// Following an attempt before its first line waits for the lines.
pub async fn follow_waits_for_an_attempt_that_has_not_logged_yet(
    port: &dyn LogStore,
) -> Result<(), String> {
    let mut stream = port.follow(&a1(), 0).await.ctx("follow")?;
    ensure_waiting(&mut stream)?;
    append(port, &a1(), &lines(0, 2)).await?;
    port.close(&a1()).await.ctx("close")?;
    ensure_eq!(rest(stream).await?, lines(0, 2), "followed lines");
    Ok(())
}

/// Following from an offset starts at that line index.
pub async fn follow_from_an_offset_skips_earlier_lines(port: &dyn LogStore) -> Result<(), String> {
    append(port, &a1(), &lines(0, 4)).await?;
    let stream = port.follow(&a1(), 3).await.ctx("follow")?;
    append(port, &a1(), &lines(4, 5)).await?;
    port.close(&a1()).await.ctx("close")?;
    ensure_eq!(
        rest(stream).await?,
        lines(3, 5),
        "lines followed from offset 3"
    );
    Ok(())
}

/// Following a closed log yields its remaining lines and ends.
pub async fn follow_of_a_closed_log_ends_after_its_lines(
    port: &dyn LogStore,
) -> Result<(), String> {
    append(port, &a1(), &lines(0, 3)).await?;
    port.close(&a1()).await.ctx("close")?;
    let stream = port.follow(&a1(), 1).await.ctx("follow")?;
    ensure_eq!(rest(stream).await?, lines(1, 3), "lines of a closed log");
    let stream = port.follow(&a1(), 3).await.ctx("follow")?;
    ensure_eq!(
        rest(stream).await?,
        Vec::<LogLine>::new(),
        "follow from the end of a closed log"
    );
    Ok(())
}

/// `delete_for_run` removes every attempt of the run and nothing else.
pub async fn delete_for_run_removes_only_that_runs_logs(port: &dyn LogStore) -> Result<(), String> {
    let b1 = attempt(&run_key("r1"), "b", 1);
    let other = attempt(&run_key("r2"), "a", 1);
    let other_dag = attempt(&RunKey::new("e", "r1"), "a", 1);
    for id in [&a1(), &b1, &other, &other_dag] {
        append(port, id, &lines(0, 2)).await?;
    }
    port.delete_for_run(&run_key("r1"))
        .await
        .ctx("delete_for_run")?;
    ensure!(
        read_all(port, &a1()).await?.is_empty(),
        "a deleted log still reads"
    );
    ensure!(
        read_all(port, &b1).await?.is_empty(),
        "a deleted log still reads"
    );
    ensure_eq!(
        read_all(port, &other).await?,
        lines(0, 2),
        "another run's log"
    );
    ensure_eq!(
        read_all(port, &other_dag).await?,
        lines(0, 2),
        "another DAG's run of the same id"
    );
    Ok(())
}
