package org.ruang.app.testrunner

import org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder
import org.junit.platform.launcher.core.LauncherFactory
import org.junit.platform.launcher.listeners.SummaryGeneratingListener
import java.io.PrintWriter
import kotlin.system.exitProcess

/**
 * Runs the app's JVM unit tests (package org.ruang.app) without Gradle, for scripts/android-check.
 * Prints one `N passed, N failed, N skipped` line; exits 1 on a failure or when nothing ran.
 */
fun main() {
    val request = LauncherDiscoveryRequestBuilder.request()
        .selectors(selectPackage("org.ruang.app"))
        .build()
    val summary = SummaryGeneratingListener()
    LauncherFactory.create().execute(request, summary)
    val s = summary.summary
    s.printFailuresTo(PrintWriter(System.out), 25)
    val passed = s.testsSucceededCount
    val failed = s.testsFailedCount + s.testsAbortedCount
    println("$passed passed, $failed failed, ${s.testsSkippedCount} skipped")
    exitProcess(if (failed > 0 || s.testsFoundCount == 0L) 1 else 0)
}
