// Command queuecheck is the kill -9 count for 'accord serve': it reads the
// delivery ids webhookload wrote with -out (those that got a 2xx) and
// counts how many the server's queue (STATEDIR/queue.db, opened after the
// server is gone) lacks.
//
//	go run ./hack/bench/webhookload/queuecheck -db STATEDIR/queue.db accepted.txt
//
// It prints "acknowledged N, stored N, lost N" and exits 1 when any is lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/accord-build/accord/internal/queue"
)

func main() {
	db := flag.String("db", "", "the server's queue database (STATEDIR/queue.db)")
	flag.Parse()
	if *db == "" || flag.NArg() != 1 {
		log.Fatal("usage: queuecheck -db STATEDIR/queue.db ACCEPTED_IDS_FILE")
	}
	lost, n, err := check(context.Background(), *db, flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("acknowledged %d, stored %d, lost %d\n", n, n-lost, lost)
	if lost > 0 {
		os.Exit(1)
	}
}

// check counts the ids of file that the queue at path has not seen.
func check(ctx context.Context, path, file string) (lost, n int, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, err
	}
	q, err := queue.Open(path, queue.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	ids := strings.Fields(string(b))
	for _, id := range ids {
		seen, err := q.Seen(ctx, id)
		if err != nil {
			return 0, 0, fmt.Errorf("reading %s: %w", id, err)
		}
		if !seen {
			lost++
		}
	}
	return lost, len(ids), nil
}
