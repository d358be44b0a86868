package org.ruang.app

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Where the session token is kept. The core is created with persistSession = false so it
 * never writes the token itself. Production: [KeystoreTokenStore]. Tests install another
 * store with [RuangApp.installTokenStore] (Robolectric has no AndroidKeyStore).
 */
interface TokenStore {
    fun save(token: String)
    /** The token, or null when there is none or it cannot be read (sign in again). */
    fun load(): String?
    fun hasToken(): Boolean
    fun clear()
}

/**
 * The token in app-private storage, encrypted with an AES/GCM key that never leaves the
 * Android Keystore.
 */
class KeystoreTokenStore(context: Context) : TokenStore {
    private val prefs = context.getSharedPreferences("session", Context.MODE_PRIVATE)
    private val box = KeystoreBox("ruang-session")

    override fun save(token: String) {
        prefs.edit().putString(KEY_TOKEN, box.seal(token.toByteArray(Charsets.UTF_8))).apply()
    }

    override fun load(): String? {
        val value = prefs.getString(KEY_TOKEN, null) ?: return null
        return try {
            String(box.open(value), Charsets.UTF_8)
        } catch (e: Exception) {
            clear()
            null
        }
    }

    override fun hasToken(): Boolean = prefs.contains(KEY_TOKEN)

    override fun clear() {
        prefs.edit().remove(KEY_TOKEN).apply()
    }

    private companion object {
        const val KEY_TOKEN = "token"
    }
}

/**
 * Where this device's identity for encrypted rooms is kept, per account (docs/protocol.md §15:
 * the Ed25519 key its MLS credential carries). Production: [KeystoreIdentityStore]; tests
 * install another with [RuangApp.installIdentityStore].
 */
interface IdentityStore {
    /** The identity kept for [userId], or null (none yet, or it cannot be read). */
    fun load(userId: String): ByteArray?
    fun save(userId: String, identity: ByteArray)
}

/** The identity in app-private storage, encrypted with its own Android Keystore AES/GCM key. */
class KeystoreIdentityStore(context: Context) : IdentityStore {
    private val prefs = context.getSharedPreferences("device_identity", Context.MODE_PRIVATE)
    private val box = KeystoreBox("ruang-device-identity")

    override fun load(userId: String): ByteArray? {
        val value = prefs.getString(userId, null) ?: return null
        return try {
            box.open(value)
        } catch (e: Exception) {
            prefs.edit().remove(userId).apply()
            null
        }
    }

    override fun save(userId: String, identity: ByteArray) {
        prefs.edit().putString(userId, box.seal(identity)).apply()
    }
}

/** AES/GCM with a key that never leaves the Android Keystore: "iv:ciphertext", base64. */
class KeystoreBox(private val alias: String) {
    fun seal(plain: ByteArray): String {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        val sealed = cipher.doFinal(plain)
        return b64(cipher.iv) + ":" + b64(sealed)
    }

    fun open(value: String): ByteArray {
        val (iv, sealed) = value.split(':', limit = 2).map { Base64.decode(it, Base64.NO_WRAP) }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BITS, iv))
        return cipher.doFinal(sealed)
    }

    private fun key(): SecretKey {
        val ks = KeyStore.getInstance(KEYSTORE)
        ks.load(null)
        (ks.getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.let { return it.secretKey }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE)
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build()
        )
        return generator.generateKey()
    }

    private fun b64(bytes: ByteArray) = Base64.encodeToString(bytes, Base64.NO_WRAP)

    private companion object {
        const val KEYSTORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val TAG_BITS = 128
    }
}
