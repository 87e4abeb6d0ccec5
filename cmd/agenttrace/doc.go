// Command agenttrace is the local agenttrace server and its command-line
// viewer.
package main
