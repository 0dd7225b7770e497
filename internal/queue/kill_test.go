package queue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/accord-build/accord/internal/trigger"
)

// The kill -9 test runs the queue in a child process (this test binary,
// re-executed into TestKill9Child) that accepts, dispatches and runs in a
// loop and prints each step only after the queue returned from it; the
// parent SIGKILLs the child mid-burst, several times, then checks that
// everything printed is in the database and nothing was done twice.
const (
	killChildEnv  = "ACCORD_QUEUE_KILL_CHILD" // the database path
	killRoundEnv  = "ACCORD_QUEUE_KILL_ROUND"
	killRounds    = 3
	killAfterAcks = 300 // accepted deliveries per round before the kill
)

func TestKill9Child(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("the child process of TestKill9")
	}
	q, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open", err)
		os.Exit(2)
	}
	runChild(q, os.Getenv(killRoundEnv))
}

// runChild works the queue until it is killed.
func runChild(q *Queue, round string) {
	ctx := context.Background()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") // one write per line
	}
	fail := func(err error) { say("error %v", err); os.Exit(2) }
	n, err := q.Recover(ctx)
	if err != nil {
		fail(err)
	}
	say("recovered %d", n)
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-%d-%d", round, g, i)
				if _, err := q.Accept(ctx, trigger.Delivery{ID: id, Event: "push", Body: []byte(`{"delivery":"` + id + `"}`)}, ""); err != nil {
					fail(err)
				}
				say("accepted %s", id)
			}
		}()
	}
	for range 2 {
		go func() {
			for {
				j, err := q.Next(ctx)
				if err != nil {
					fail(err)
				}
				say("running %s", j.ID)
				if seq, _ := jobSeq(j.ID); seq%2 == 1 {
					continue // a long build: left running when the kill comes
				}
				if err := q.Finish(ctx, j.ID, Succeeded, &Record{Verdict: "released"}); err != nil {
					fail(err)
				}
				say("finished %s", j.ID)
			}
		}()
	}
	for {
		und, err := q.Undispatched(ctx)
		if err != nil {
			fail(err)
		}
		for _, d := range und {
			jobs, err := q.Dispatch(ctx, d.ID, []trigger.Request{{Repo: "o/a", Kind: trigger.KindPush, Ref: "refs/heads/" + d.ID}}, "")
			if err != nil {
				fail(err)
			}
			say("dispatched %s %s", d.ID, jobs[0].ID)
		}
		time.Sleep(time.Millisecond)
	}
}

// killLog is what the children said, complete lines only.
type killLog struct {
	accepted, finished map[string]bool
	dispatched         map[string]string // delivery -> run
}

func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	log := killLog{accepted: map[string]bool{}, finished: map[string]bool{}, dispatched: map[string]string{}}
	for round := range killRounds {
		runAndKill(t, path, round, &log)
	}
	q, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	checkIntegrity(t, q)
	checkKillLog(t, q, log)
}

// runAndKill starts a child, reads its lines until enough deliveries were
// accepted, and SIGKILLs it.
func runAndKill(t *testing.T, path string, round int, log *killLog) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path, fmt.Sprintf("%s=round%d", killRoundEnv, round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	r := bufio.NewReader(out)
	acks, killed := 0, false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a line cut short by it is dropped
		}
		f := strings.Fields(line)
		switch f[0] {
		case "accepted":
			log.accepted[f[1]] = true
			acks++
		case "dispatched":
			log.dispatched[f[1]] = f[2]
		case "finished":
			log.finished[f[1]] = true
		case "error":
			t.Fatalf("child: %s", line)
		}
		if acks >= killAfterAcks && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended with %v, not by SIGKILL (stderr: %s)", round, err, stderr.String())
	}
	if acks < killAfterAcks {
		t.Fatalf("round %d: only %d deliveries accepted before the timeout", round, acks)
	}
	t.Logf("round %d: killed after %d acknowledged accepts", round, acks)
}

// checkIntegrity runs bbolt's consistency check.
func checkIntegrity(t *testing.T, q *Queue) {
	t.Helper()
	err := q.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkKillLog checks the database against what the children said.
func checkKillLog(t *testing.T, q *Queue, log killLog) {
	ctx := context.Background()
	und, err := q.Undispatched(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, d := range und {
		pending[d.ID] = true
	}
	for id := range log.accepted {
		sd, found, err := q.Delivery(ctx, id)
		switch {
		case err != nil || !found:
			t.Errorf("delivery %s was acknowledged but is lost (%v)", id, err)
		case sd.State == DeliveryAccepted && !pending[id]:
			t.Errorf("delivery %s is accepted but not waiting for the dispatcher", id)
		case sd.State == DeliveryDispatched && len(sd.Runs) != 1:
			t.Errorf("delivery %s dispatched with runs %v, want one", id, sd.Runs)
		case sd.State == DeliveryIgnored:
			t.Errorf("delivery %s ignored", id)
		}
	}
	jobs, err := q.Jobs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	byDelivery := map[string][]string{}
	running := 0
	for _, j := range jobs {
		byDelivery[j.Request.DeliveryID] = append(byDelivery[j.Request.DeliveryID], j.ID)
		if j.State == Running {
			running++
		}
	}
	for d, runs := range byDelivery {
		if len(runs) != 1 {
			t.Errorf("delivery %s started %d runs %v, want 1", d, len(runs), runs)
		}
	}
	for d, run := range log.dispatched {
		if got := byDelivery[d]; len(got) != 1 || got[0] != run {
			t.Errorf("delivery %s: dispatched as %s, stored runs %v", d, run, got)
		}
	}
	for run := range log.finished {
		if j := mustJob(t, q, run); j.State != Succeeded {
			t.Errorf("run %s finished, stored as %s", run, j.State)
		}
	}
	if running == 0 {
		t.Errorf("no run was left running by the kill: the test does not test Recover")
	}
	n, err := q.Recover(ctx)
	if err != nil || n != running {
		t.Errorf("Recover = %d, %v; want the %d running runs back", n, err, running)
	}
	if _, r, _ := q.Depth(ctx); r != 0 {
		t.Errorf("%d runs still running after Recover", r)
	}
	t.Logf("%d acknowledged deliveries (%d waiting for the dispatcher), %d runs, %d finished, %d recovered",
		len(log.accepted), len(und), len(jobs), len(log.finished), n)
}
