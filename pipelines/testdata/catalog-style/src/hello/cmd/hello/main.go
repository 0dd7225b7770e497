// Command hello is the program the catalog-style golang-build Tasks build.
package main

func main() { println("hello from a catalog-style build") }
