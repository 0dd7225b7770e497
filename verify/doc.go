// Package verify will hold accord's verification policy and checks; it must
// import neither Tekton nor Kubernetes (issue 4).
package verify
