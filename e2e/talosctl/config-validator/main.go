// talos-config-validator runs Talos' own machine-config validation (the code behind
// `talosctl validate`: configloader + ValidateAsClient with the local and strict options) from a pinned
// github.com/siderolabs/talos/pkg/machinery. It exists because talosctl itself cannot be built for
// every Talos release from the module proxy reachable here (see versions.env), while machinery can.
//
// Usage: talos-config-validator --mode cloud|metal|container FILE...
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
)

// mode satisfies validation.RuntimeMode the way talosctl's runtime.Mode does for these three modes.
type mode string

func (m mode) String() string        { return string(m) }
func (m mode) RequiresInstall() bool { return m == "metal" }
func (m mode) InContainer() bool     { return m == "container" }

func main() {
	modeFlag := flag.String("mode", "cloud", "runtime mode: cloud, metal or container")
	flag.Parse()

	switch *modeFlag {
	case "cloud", "metal", "container":
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", *modeFlag)
		os.Exit(2)
	}

	failed := false

	for _, file := range flag.Args() {
		cfg, err := configloader.NewFromFile(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true

			continue
		}

		warnings, err := cfg.ValidateAsClient(mode(*modeFlag), validation.WithLocal(), validation.WithStrict())
		for _, w := range warnings {
			fmt.Fprintf(os.Stderr, "%s: warning: %s\n", file, w)
		}

		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			failed = true

			continue
		}

		fmt.Printf("%s is valid for %s mode\n", file, *modeFlag)
	}

	if failed {
		os.Exit(1)
	}
}
