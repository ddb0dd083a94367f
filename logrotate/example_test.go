package logrotate_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/logrotate"
)

func Example() {
	dir, _ := os.MkdirTemp("", "logrotate-example")
	defer os.RemoveAll(dir)

	// app.log is a symlink to the current file, app.<date>.log; a new file
	// starts every day and every 10 MiB; the 7 newest files are kept.
	w, err := logrotate.Open(logrotate.Config{
		Path:     filepath.Join(dir, "app.log"),
		MaxSize:  10 << 20,
		MaxFiles: 7,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	// As a plain io.Writer...
	fmt.Fprintln(w, "hello")

	// ...or as a logrus hook, next to the console.
	logger := logrus.New()
	logger.Out = os.Stdout
	logger.Formatter = &logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}
	logger.AddHook(logrotate.NewHook(w, &logrus.JSONFormatter{DisableTimestamp: true}))
	logger.WithField("instance", 2).Info("listening")

	b, _ := os.ReadFile(filepath.Join(dir, "app.log"))
	fmt.Print(string(b))
	// Output:
	// level=info msg=listening instance=2
	// hello
	// {"instance":2,"level":"info","msg":"listening"}
}
