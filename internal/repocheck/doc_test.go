// Package repocheck holds tests of the repository as a whole: that the code
// in README.md and in doc comments compiles, that each package's entry points
// have runnable Examples with checked output, and that the module's public
// surface is what it means to be. It has test files only.
package repocheck
