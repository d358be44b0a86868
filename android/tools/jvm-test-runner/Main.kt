package org.ruang.app.testrunner

import org.junit.platform.engine.TestExecutionResult
import org.junit.platform.engine.discovery.DiscoverySelectors.selectClass
import org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage
import org.junit.platform.launcher.TestExecutionListener
import org.junit.platform.launcher.TestIdentifier
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder
import org.junit.platform.launcher.core.LauncherFactory
import org.junit.platform.launcher.listeners.SummaryGeneratingListener
import java.io.PrintWriter
import kotlin.system.exitProcess

/**
 * Runs JVM tests without Gradle: the presenters' JUnit 5 tests (scripts/android-check) and the
 * Robolectric JUnit 4 tests (scripts/android-test, through the JUnit Platform vintage engine,
 * which that script puts on the classpath). Arguments: the packages or classes to run
 * (default org.ruang.app). Prints each finished test, then one `N passed, N failed, N skipped` line;
 * exits 1 on a failure or when nothing ran.
 */
fun main(args: Array<String>) {
    val packages = args.toList().ifEmpty { listOf("org.ruang.app") }
    val request = LauncherDiscoveryRequestBuilder.request()
        // A name whose last part starts upper case is a class (one test class), else a package.
        .selectors(packages.map { if (it.substringAfterLast('.').first().isUpperCase()) selectClass(it) else selectPackage(it) })
        .build()
    val summary = SummaryGeneratingListener()
    val progress = object : TestExecutionListener {
        private val started = HashMap<String, Long>()
        override fun executionStarted(id: TestIdentifier) {
            if (id.isTest) started[id.uniqueId] = System.nanoTime()
        }
        override fun executionFinished(id: TestIdentifier, result: TestExecutionResult) {
            if (!id.isTest) return
            val ms = (System.nanoTime() - (started.remove(id.uniqueId) ?: System.nanoTime())) / 1_000_000
            val mark = when (result.status) {
                TestExecutionResult.Status.SUCCESSFUL -> "ok  "
                TestExecutionResult.Status.ABORTED -> "skip"
                else -> "FAIL"
            }
            println("$mark ${id.displayName} (${ms} ms)")
            System.out.flush()
        }
        override fun executionSkipped(id: TestIdentifier, reason: String) {
            if (id.isTest) println("skip ${id.displayName}: $reason")
        }
    }
    LauncherFactory.create().execute(request, summary, progress)
    val s = summary.summary
    s.printFailuresTo(PrintWriter(System.out), 25)
    val passed = s.testsSucceededCount
    val failed = s.testsFailedCount + s.testsAbortedCount
    println("$passed passed, $failed failed, ${s.testsSkippedCount} skipped")
    System.out.flush()
    exitProcess(if (failed > 0 || s.testsFoundCount == 0L) 1 else 0)
}
