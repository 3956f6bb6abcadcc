// Command svcgen creates Warren services and keeps their generated code in
// step with their Service interface. `svcgen help` shows the commands;
// docs/svcgen.md explains what is generated and what is yours.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
