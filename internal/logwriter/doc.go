// Package logwriter joins the log lines that many goroutines write at
// the same moment into one write of the file under them.
//
// A server that logs a line per request from each of its handlers spends
// a write system call per line, under the log handler's lock: under load
// the handlers queue for that lock and the calls add up (in a profile of
// hack/bench/serve.sh, accord serve spent about 7% of its CPU on its log
// lines, two thirds of that in write). A [Writer] copies each line into
// a buffer and returns; one goroutine writes whatever has gathered since
// its last write, at once, as soon as there is something to write. Alone, a line is written at
// once, as before; under load, the lines of one moment share a call.
//
// Lines are written whole and in the order they were given. What a
// Writer holds is written out by Close; a process killed (kill -9)
// loses the lines given in the last moment before, which were not yet
// written: the lines, never what they report (a delivery is stored before
// its line is logged).
package logwriter
